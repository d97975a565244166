//! Built-in name lists and the spelling transformations HR systems apply to
//! them.
//!
//! Names are grouped by region so that given and family names mostly come
//! from the same culture (with a share of mixed pairs, as in any international
//! workforce). Each list is ordered roughly most common first; the generator
//! picks with a skew towards the front, so same-name collisions arise as they
//! do in real data. The lists deliberately include characters outside Latin-1
//! (Polish, Czech, Turkish, Vietnamese, Japanese macrons) because the SAP
//! export cannot carry them and has to transliterate, which is exactly the
//! kind of mismatch the join rules must survive.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

#[derive(Debug)]
pub struct Region {
    pub name: &'static str,
    /// Relative share of the workforce.
    pub weight: u32,
    /// Chance (per mille) of a middle name.
    pub middle: u32,
    /// The middle name is the father's given name (Arabic, Greek), so it is
    /// male whatever the person's sex.
    pub paternal_middle: bool,
    /// Index into [`super::org::LOCATIONS`] of the usual office.
    pub home: usize,
    pub female: &'static [&'static str],
    pub male: &'static [&'static str],
    /// Family names; `male/female` where the language inflects them
    /// (`Kowalski/Kowalska`, `Novák/Nováková`, `Ivanov/Ivanova`).
    pub family: &'static [&'static str],
}

pub static REGIONS: &[Region] = &[
    Region {
        name: "anglo",
        weight: 170,
        middle: 450,
        paternal_middle: false,
        home: 0,
        female: &[
            "Mary",
            "Sarah",
            "Jennifer",
            "Elizabeth",
            "Emily",
            "Jessica",
            "Hannah",
            "Olivia",
            "Grace",
            "Megan",
            "Chloe",
            "Rebecca",
            "Laura",
            "Charlotte",
            "Amelia",
            "Siobhán",
            "Aoife",
            "Niamh",
            "Zoë",
            "Abigail",
        ],
        male: &[
            "James",
            "John",
            "Michael",
            "David",
            "Robert",
            "William",
            "Thomas",
            "Daniel",
            "Christopher",
            "Matthew",
            "Andrew",
            "Joshua",
            "Ryan",
            "Liam",
            "Benjamin",
            "Patrick",
            "Seán",
            "Ciarán",
            "Eoin",
            "Noah",
        ],
        family: &[
            "Smith",
            "Johnson",
            "Williams",
            "Brown",
            "Jones",
            "Miller",
            "Davis",
            "Wilson",
            "Taylor",
            "Anderson",
            "Thomas",
            "Moore",
            "Martin",
            "Jackson",
            "Thompson",
            "White",
            "Harris",
            "Clark",
            "Lewis",
            "Robinson",
            "Walker",
            "Young",
            "Allen",
            "King",
            "Wright",
            "Scott",
            "Hill",
            "Green",
            "Baker",
            "Campbell",
            "Murphy",
            "Kelly",
            "O'Brien",
            "O'Sullivan",
            "O'Connor",
            "Byrne",
            "MacDonald",
            "McKenzie",
            "Fitzgerald",
            "Brooks",
        ],
    },
    Region {
        name: "german",
        weight: 120,
        middle: 200,
        paternal_middle: false,
        home: 2,
        female: &[
            "Anna",
            "Katrin",
            "Sabine",
            "Julia",
            "Leonie",
            "Sophie",
            "Lena",
            "Franziska",
            "Heike",
            "Ursula",
            "Mareike",
            "Dörte",
            "Bärbel",
            "Ines",
            "Anja",
        ],
        male: &[
            "Lukas",
            "Michael",
            "Thomas",
            "Stefan",
            "Andreas",
            "Jürgen",
            "Tobias",
            "Jörg",
            "Klaus",
            "Maximilian",
            "Felix",
            "Jonas",
            "Matthias",
            "Günter",
            "Sören",
            "Uwe",
            "Benedikt",
            "Rüdiger",
            "Till",
        ],
        family: &[
            "Müller",
            "Schmidt",
            "Schneider",
            "Fischer",
            "Weber",
            "Meyer",
            "Wagner",
            "Becker",
            "Schulz",
            "Hoffmann",
            "Schäfer",
            "Koch",
            "Bauer",
            "Richter",
            "Klein",
            "Wolf",
            "Schröder",
            "Neumann",
            "Schwarz",
            "Zimmermann",
            "Braun",
            "Krüger",
            "Hartmann",
            "Lange",
            "Werner",
            "Krause",
            "Lehmann",
            "Köhler",
            "Günther",
            "Strauß",
            "Weiß",
            "Groß",
            "Jäger",
            "Vogel",
            "Kühn",
            "Frühauf",
            "Öttinger",
            "von Bülow",
        ],
    },
    Region {
        name: "french",
        weight: 60,
        middle: 250,
        paternal_middle: false,
        home: 5,
        female: &[
            "Marie", "Camille", "Sophie", "Hélène", "Élodie", "Amélie", "Céline", "Chloé", "Léa",
            "Gaëlle", "Anaïs", "Mélanie", "Aurélie",
        ],
        male: &[
            "Jean",
            "Pierre",
            "Nicolas",
            "François",
            "Julien",
            "Stéphane",
            "Benoît",
            "Jérôme",
            "Théo",
            "Loïc",
            "Noël",
        ],
        family: &[
            "Martin",
            "Bernard",
            "Dubois",
            "Thomas",
            "Robert",
            "Richard",
            "Petit",
            "Durand",
            "Leroy",
            "Moreau",
            "Simon",
            "Laurent",
            "Lefèvre",
            "Michel",
            "Garnier",
            "Dupont",
            "Fontaine",
            "Rousseau",
            "Chevalier",
            "Gérard",
            "Mercier",
            "Lemaître",
            "Côté",
            "Gagné",
            "Bérubé",
            "Pelletier",
            "Lacroix",
        ],
    },
    Region {
        name: "spanish",
        weight: 120,
        middle: 250,
        paternal_middle: false,
        home: 4,
        female: &[
            "María",
            "Ana",
            "Lucía",
            "Carmen",
            "Sofía",
            "Valentina",
            "Camila",
            "Inés",
            "Rocío",
            "Fernanda",
            "Ximena",
            "Begoña",
            "Nuria",
            "Pilar",
            "Maria",
        ],
        male: &[
            "José",
            "Juan",
            "Carlos",
            "Luis",
            "Javier",
            "Alejandro",
            "Diego",
            "Andrés",
            "Martín",
            "Raúl",
            "Ramón",
            "Sebastián",
            "Jesús",
            "Ángel",
            "Mateo",
            "Iñaki",
        ],
        family: &[
            "García",
            "Fernández",
            "González",
            "Rodríguez",
            "López",
            "Martínez",
            "Sánchez",
            "Pérez",
            "Gómez",
            "Díaz",
            "Hernández",
            "Ruiz",
            "Jiménez",
            "Álvarez",
            "Moreno",
            "Muñoz",
            "Romero",
            "Navarro",
            "Torres",
            "Domínguez",
            "Vázquez",
            "Ramírez",
            "Castillo",
            "Núñez",
            "Ortiz",
            "Mendoza",
            "Herrera",
            "Medina",
            "Guzmán",
            "Peña",
            "de la Cruz",
            "Ibáñez",
            "Garcia",
        ],
    },
    Region {
        name: "portuguese",
        weight: 50,
        middle: 300,
        paternal_middle: false,
        home: 7,
        female: &[
            "Maria",
            "Ana",
            "Beatriz",
            "Inês",
            "Luíza",
            "Letícia",
            "Vitória",
            "Mônica",
            "Conceição",
        ],
        male: &[
            "João",
            "Pedro",
            "Tiago",
            "Rafael",
            "Gonçalo",
            "Thiago",
            "Caio",
            "Antônio",
            "Sebastião",
        ],
        family: &[
            "Silva",
            "Santos",
            "Ferreira",
            "Pereira",
            "Oliveira",
            "Costa",
            "Rodrigues",
            "Martins",
            "Sousa",
            "Fernandes",
            "Gonçalves",
            "Gomes",
            "Lopes",
            "Marques",
            "Alves",
            "Almeida",
            "Ribeiro",
            "Pinto",
            "Carvalho",
            "Araújo",
            "Magalhães",
            "Brandão",
            "Simões",
        ],
    },
    Region {
        name: "italian",
        weight: 50,
        middle: 100,
        paternal_middle: false,
        home: 3,
        female: &[
            "Francesca",
            "Chiara",
            "Giulia",
            "Martina",
            "Federica",
            "Elena",
            "Paola",
            "Ilaria",
        ],
        male: &[
            "Giuseppe",
            "Giovanni",
            "Alessandro",
            "Lorenzo",
            "Matteo",
            "Andrea",
            "Marco",
            "Luca",
            "Simone",
            "Niccolò",
        ],
        family: &[
            "Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano", "Colombo", "Ricci",
            "Marino", "Greco", "Bruno", "Gallo", "Conti", "De Luca", "Mancini", "Costa",
            "Giordano", "Rizzo", "Lombardi", "Moretti", "Fabbri", "D'Angelo", "Caruso",
        ],
    },
    Region {
        name: "dutch",
        weight: 30,
        middle: 150,
        paternal_middle: false,
        home: 9,
        female: &["Sanne", "Femke", "Anouk", "Lotte", "Maartje", "Eline"],
        male: &[
            "Daan", "Bram", "Joost", "Pieter", "Sven", "Ruud", "Thijs", "Jeroen",
        ],
        family: &[
            "de Jong",
            "Jansen",
            "de Vries",
            "van den Berg",
            "van Dijk",
            "Bakker",
            "Janssen",
            "Visser",
            "Smit",
            "Meijer",
            "de Boer",
            "Mulder",
            "de Groot",
            "Bos",
            "Vos",
            "Peters",
            "Hendriks",
            "van Leeuwen",
            "Dekker",
            "Brouwer",
        ],
    },
    Region {
        name: "nordic",
        weight: 40,
        middle: 200,
        paternal_middle: false,
        home: 10,
        female: &[
            "Anna", "Ingrid", "Astrid", "Åsa", "Sigrid", "Freja", "Linnéa", "Kari", "Päivi",
            "Tuuli", "Þóra",
        ],
        male: &[
            "Erik", "Lars", "Björn", "Mikael", "Jens", "Søren", "Magnus", "Håkan", "Øystein",
            "Pål", "Jukka", "Aleksi",
        ],
        family: &[
            "Johansson",
            "Andersson",
            "Karlsson",
            "Nilsson",
            "Eriksson",
            "Larsson",
            "Hansen",
            "Jensen",
            "Nielsen",
            "Olsen",
            "Pedersen",
            "Lindqvist",
            "Bergström",
            "Sjöberg",
            "Åberg",
            "Håkansson",
            "Nyström",
            "Sørensen",
            "Kristiansen",
            "Virtanen",
            "Korhonen",
            "Mäkinen",
            "Hämäläinen",
            "Jónsson/Jónsdóttir",
            "Guðmundsson/Guðmundsdóttir",
        ],
    },
    Region {
        name: "west-slavic",
        weight: 40,
        middle: 100,
        paternal_middle: false,
        home: 11,
        female: &[
            "Anna",
            "Katarzyna",
            "Agnieszka",
            "Magdalena",
            "Małgorzata",
            "Zofia",
            "Tereza",
            "Petra",
            "Lucie",
        ],
        male: &[
            "Piotr",
            "Tomasz",
            "Łukasz",
            "Krzysztof",
            "Paweł",
            "Wojciech",
            "Jan",
            "Jiří",
            "Ondřej",
        ],
        family: &[
            "Nowak",
            "Kowalski/Kowalska",
            "Wiśniewski/Wiśniewska",
            "Wójcik",
            "Kowalczyk",
            "Kamiński/Kamińska",
            "Lewandowski/Lewandowska",
            "Zieliński/Zielińska",
            "Szymański/Szymańska",
            "Woźniak",
            "Dąbrowski/Dąbrowska",
            "Kozłowski/Kozłowska",
            "Mazur",
            "Jankowski/Jankowska",
            "Novák/Nováková",
            "Svoboda/Svobodová",
            "Dvořák/Dvořáková",
            "Černý/Černá",
            "Procházka/Procházková",
            "Kučera/Kučerová",
            "Němec/Němcová",
        ],
    },
    Region {
        name: "balkan-hungarian-romanian",
        weight: 20,
        middle: 80,
        paternal_middle: false,
        home: 17,
        female: &[
            "Zsófia",
            "Réka",
            "Ioana",
            "Ana-Maria",
            "Marija",
            "Milica",
            "Jelena",
        ],
        male: &[
            "László", "Ádám", "Bence", "Andrei", "Mihai", "Nikola", "Dragan",
        ],
        family: &[
            "Nagy",
            "Kovács",
            "Tóth",
            "Szabó",
            "Horváth",
            "Varga",
            "Kiss",
            "Popescu",
            "Ionescu",
            "Dumitrescu",
            "Stan",
            "Jovanović",
            "Petrović",
            "Nikolić",
            "Marković",
            "Đorđević",
            "Kovačević",
            "Babić",
        ],
    },
    Region {
        name: "greek",
        weight: 20,
        middle: 150,
        paternal_middle: true,
        home: 3,
        female: &["Eleni", "Maria", "Katerina", "Sofia", "Despina"],
        male: &["Giorgos", "Dimitris", "Konstantinos", "Nikos", "Yannis"],
        family: &[
            "Papadopoulos/Papadopoulou",
            "Papadakis/Papadaki",
            "Georgiou",
            "Nikolaidis/Nikolaidou",
            "Karagiannis/Karagianni",
            "Vlachos/Vlachou",
            "Oikonomou",
            "Dimitriou",
            "Christodoulou",
            "Angelopoulos/Angelopoulou",
        ],
    },
    Region {
        name: "east-slavic",
        weight: 30,
        middle: 0,
        paternal_middle: false,
        home: 11,
        female: &[
            "Olga",
            "Natalia",
            "Irina",
            "Oksana",
            "Yulia",
            "Ekaterina",
            "Svetlana",
        ],
        male: &[
            "Aleksandr",
            "Dmitri",
            "Sergei",
            "Andriy",
            "Mykola",
            "Alexei",
            "Taras",
        ],
        family: &[
            "Ivanov/Ivanova",
            "Petrov/Petrova",
            "Smirnov/Smirnova",
            "Kuznetsov/Kuznetsova",
            "Popov/Popova",
            "Sokolov/Sokolova",
            "Volkov/Volkova",
            "Shevchenko",
            "Kovalenko",
            "Bondarenko",
            "Melnyk",
            "Tkachenko",
            "Morozov/Morozova",
            "Lebedev/Lebedeva",
            "Novikov/Novikova",
            "Fedorov/Fedorova",
        ],
    },
    Region {
        name: "turkish",
        weight: 30,
        middle: 50,
        paternal_middle: false,
        home: 12,
        female: &[
            "Ayşe", "Fatma", "Zeynep", "Elif", "Özge", "Şule", "Çağla", "Hülya",
        ],
        male: &[
            "Mehmet", "Mustafa", "Emre", "Burak", "Can", "Gökhan", "İbrahim", "Oğuz",
        ],
        family: &[
            "Yılmaz",
            "Kaya",
            "Demir",
            "Şahin",
            "Çelik",
            "Yıldız",
            "Yıldırım",
            "Öztürk",
            "Aydın",
            "Özdemir",
            "Arslan",
            "Doğan",
            "Kılıç",
            "Aslan",
            "Çetin",
            "Koç",
            "Kurt",
            "Özkan",
            "Şimşek",
            "Erdoğan",
        ],
    },
    Region {
        name: "arabic",
        weight: 40,
        middle: 250,
        paternal_middle: true,
        home: 13,
        female: &[
            "Fatima", "Aisha", "Layla", "Mariam", "Nour", "Salma", "Yasmin", "Rania", "Leila",
            "Samira", "Noura",
        ],
        male: &[
            "Mohammed", "Ahmed", "Omar", "Youssef", "Khalid", "Hassan", "Karim", "Tariq", "Ali",
            "Hamza",
        ],
        family: &[
            "Al-Sayed",
            "Haddad",
            "Khoury",
            "Mansour",
            "Nasser",
            "El-Amin",
            "Aziz",
            "Saleh",
            "Hamdan",
            "Farouk",
            "Abboud",
            "Al-Masri",
            "Bakr",
            "Benali",
            "El Idrissi",
            "Bouzid",
            "Rahman",
            "Hussein",
            "Tahir",
        ],
    },
    Region {
        name: "south-asian",
        weight: 80,
        middle: 200,
        paternal_middle: false,
        home: 8,
        female: &[
            "Priya", "Ananya", "Deepika", "Kavya", "Sneha", "Lakshmi", "Pooja", "Divya", "Meera",
            "Nisha", "Ayesha",
        ],
        male: &[
            "Rajesh", "Aarav", "Vikram", "Arjun", "Rahul", "Sanjay", "Amit", "Rohan", "Karthik",
            "Suresh", "Imran", "Farhan", "Tanvir",
        ],
        family: &[
            "Sharma",
            "Patel",
            "Singh",
            "Kumar",
            "Gupta",
            "Iyer",
            "Reddy",
            "Nair",
            "Rao",
            "Mehta",
            "Joshi",
            "Chatterjee",
            "Banerjee",
            "Das",
            "Pillai",
            "Menon",
            "Agarwal",
            "Verma",
            "Khan",
            "Chowdhury",
            "Bhatt",
            "Desai",
            "Kapoor",
            "Malhotra",
            "Subramanian",
            "Krishnan",
        ],
    },
    Region {
        name: "chinese",
        weight: 80,
        middle: 0,
        paternal_middle: false,
        home: 14,
        female: &[
            "Jing", "Xin", "Yan", "Mei", "Ying", "Li", "Zihan", "Shu-fen", "Ka-wai",
        ],
        male: &[
            "Wei", "Hao", "Jun", "Lei", "Jie", "Tao", "Xiaoming", "Yuxuan", "Haoran", "Chia-hao",
            "Wing",
        ],
        family: &[
            "Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Huang", "Zhao", "Wu", "Zhou", "Xu",
            "Sun", "Ma", "Zhu", "Hu", "Guo", "Lin", "He", "Gao", "Luo", "Cheng", "Chan", "Wong",
            "Lam", "Cheung", "Tsai",
        ],
    },
    Region {
        name: "japanese",
        weight: 30,
        middle: 0,
        paternal_middle: false,
        home: 15,
        female: &["Yuki", "Aiko", "Sakura", "Yui", "Haruka", "Misaki", "Emi"],
        male: &[
            "Hiroshi", "Takeshi", "Haruto", "Kenji", "Daiki", "Sōta", "Ren",
        ],
        family: &[
            "Satō",
            "Suzuki",
            "Takahashi",
            "Tanaka",
            "Watanabe",
            "Itō",
            "Yamamoto",
            "Nakamura",
            "Kobayashi",
            "Katō",
            "Yoshida",
            "Yamada",
            "Sasaki",
            "Yamaguchi",
            "Matsumoto",
            "Inoue",
            "Kimura",
            "Hayashi",
            "Sato",
            "Ito",
        ],
    },
    Region {
        name: "korean",
        weight: 20,
        middle: 0,
        paternal_middle: false,
        home: 15,
        female: &["Seo-yeon", "Ji-woo", "Soo-jin", "Eun-ji", "Ha-eun"],
        male: &["Min-jun", "Ji-hoon", "Hyun-woo", "Dong-hyun", "Jae-won"],
        family: &[
            "Kim", "Lee", "Park", "Choi", "Jung", "Kang", "Cho", "Yoon", "Jang", "Lim", "Han",
            "Shin",
        ],
    },
    Region {
        name: "vietnamese",
        weight: 20,
        middle: 500,
        paternal_middle: false,
        home: 14,
        female: &["Linh", "Hương", "Thảo", "Trang", "Ngọc", "Phương", "Anh"],
        male: &["Minh", "Đức", "Quang", "Tuấn", "Hùng", "An", "Văn"],
        family: &[
            "Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi",
            "Đỗ", "Nguyen", "Tran",
        ],
    },
    Region {
        name: "african",
        weight: 40,
        middle: 150,
        paternal_middle: false,
        home: 16,
        female: &[
            "Ama", "Abena", "Ngozi", "Folake", "Adaeze", "Thandiwe", "Nomvula", "Amara", "Wanjiru",
            "Fatou", "Awa", "Adwoa",
        ],
        male: &[
            "Kwame",
            "Kofi",
            "Chinedu",
            "Oluwaseun",
            "Emeka",
            "Tendai",
            "Sipho",
            "Chidi",
            "Moussa",
            "Yaw",
            "Tunde",
            "Olusegun",
        ],
        family: &[
            "Mensah", "Owusu", "Boateng", "Asante", "Okafor", "Adeyemi", "Okonkwo", "Eze", "Nwosu",
            "Balogun", "Diallo", "Traoré", "Diop", "Ndiaye", "Kamara", "Mwangi", "Otieno",
            "Kariuki", "Dlamini", "Nkosi", "Osei", "Ogunleye", "Achebe",
        ],
    },
    Region {
        name: "southeast-asian",
        weight: 20,
        middle: 150,
        paternal_middle: false,
        home: 14,
        female: &["Maricel", "Jasmine", "Siti", "Dewi", "Putri", "Angelica"],
        male: &["Jose", "Rodel", "Budi", "Agus", "Rizal", "Mark"],
        family: &[
            "Santos",
            "Reyes",
            "Cruz",
            "Bautista",
            "Dela Cruz",
            "Villanueva",
            "Gonzales",
            "Wijaya",
            "Susanto",
            "Hidayat",
            "Kusuma",
            "Santoso",
            "Nugroho",
        ],
    },
];

/// Usual short forms, used as Workday's Preferred_First_Name.
pub static NICKNAMES: &[(&str, &str)] = &[
    ("Robert", "Bob"),
    ("William", "Bill"),
    ("Elizabeth", "Liz"),
    ("Michael", "Mike"),
    ("Christopher", "Chris"),
    ("Matthew", "Matt"),
    ("Andrew", "Andy"),
    ("Benjamin", "Ben"),
    ("Rebecca", "Becky"),
    ("Abigail", "Abby"),
    ("Patrick", "Paddy"),
    ("Daniel", "Dan"),
    ("Maximilian", "Max"),
    ("Franziska", "Franzi"),
    ("Matthias", "Matze"),
    ("Alejandro", "Alex"),
    ("José", "Pepe"),
    ("Francisco", "Paco"),
    ("Giuseppe", "Beppe"),
    ("Alessandro", "Sandro"),
    ("Konstantinos", "Kostas"),
    ("Aleksandr", "Sasha"),
    ("Ekaterina", "Katya"),
    ("Mohammed", "Mo"),
    ("Rajesh", "Raj"),
    ("Oluwaseun", "Seun"),
    ("Katarzyna", "Kasia"),
    ("Małgorzata", "Gosia"),
];

/// English names adopted at work by people whose legal name is East or
/// South-East Asian: (female, male).
pub static ADOPTED: (&[&str], &[&str]) = (
    &["Jenny", "Vivian", "Grace", "Cindy", "Helen", "Sam"],
    &["David", "Kevin", "Eric", "Tony", "Jason", "Alan", "Sam"],
);

/// The form of a family name for the person's sex (see [`Region::family`]).
pub fn family_form(entry: &'static str, female: bool) -> &'static str {
    match entry.split_once('/') {
        Some((m, f)) => {
            if female {
                f
            } else {
                m
            }
        }
        None => entry,
    }
}

/// Characters that Unicode does not decompose into a base letter plus marks,
/// with the transliteration HR systems and mail admins use for them.
fn transliterate(c: char) -> Option<&'static str> {
    Some(match c {
        'ß' => "ss",
        'ẞ' => "SS",
        'ø' => "o",
        'Ø' => "O",
        'æ' => "ae",
        'Æ' => "AE",
        'œ' => "oe",
        'Œ' => "OE",
        'ł' => "l",
        'Ł' => "L",
        'đ' => "d",
        'Đ' => "D",
        'ð' => "d",
        'Ð' => "D",
        'þ' => "th",
        'Þ' => "Th",
        'ı' => "i",
        _ => return None,
    })
}

/// Drops diacritics, keeping case: `Müller` → `Muller`, `Łukasz` → `Lukasz`,
/// `Strauß` → `Strauss`. The result is ASCII for every name in the lists.
pub fn ascii_fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii() {
            out.push(c);
        } else if let Some(t) = transliterate(c) {
            out.push_str(t);
        } else {
            out.extend(c.to_string().nfd().filter(|&m| !is_combining_mark(m)));
        }
    }
    out
}

/// What a Latin-1 system stores when given `s`: characters Latin-1 has are
/// kept, the others transliterated (`Wiśniewski` → `Wisniewski`, `Öztürk`
/// stays).
pub fn latin1(s: &str) -> String {
    if s.chars().all(|c| u32::from(c) <= 0xFF) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut buf = [0u8; 4];
    for c in s.chars() {
        if u32::from(c) <= 0xFF {
            out.push(c);
        } else {
            out.push_str(&ascii_fold(c.encode_utf8(&mut buf)));
        }
    }
    out
}

/// Upper case that stays inside Latin-1 (`ÿ` would become `Ÿ`, which is not).
pub fn latin1_upper(s: &str) -> String {
    latin1(&latin1(s).to_uppercase())
}

/// The form a name takes in an e-mail local part: folded, lower case, only
/// letters, digits and hyphens (`O'Brien` → `obrien`, `de la Cruz` →
/// `delacruz`).
pub fn email_part(s: &str) -> String {
    ascii_fold(s)
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_reaches_ascii_and_latin1() {
        for r in REGIONS {
            let family = r
                .family
                .iter()
                .flat_map(|f| [family_form(f, true), family_form(f, false)]);
            for n in r.female.iter().chain(r.male).copied().chain(family) {
                assert!(!n.trim().is_empty() && n.trim() == n, "{n:?}");
                assert!(ascii_fold(n).is_ascii(), "{n:?} -> {:?}", ascii_fold(n));
                assert!(latin1(n).chars().all(|c| u32::from(c) <= 0xFF), "{n:?}");
                assert!(
                    latin1_upper(n).chars().all(|c| u32::from(c) <= 0xFF),
                    "{n:?}"
                );
                assert!(!email_part(n).is_empty(), "{n:?}");
            }
        }
        assert_eq!(ascii_fold("Müller"), "Muller");
        assert_eq!(ascii_fold("Łukasz Wiśniewski"), "Lukasz Wisniewski");
        assert_eq!(ascii_fold("Strauß"), "Strauss");
        assert_eq!(ascii_fold("Nguyễn"), "Nguyen");
        assert_eq!(ascii_fold("İbrahim"), "Ibrahim");
        assert_eq!(latin1("Öztürk"), "Öztürk");
        assert_eq!(latin1("Yılmaz"), "Yilmaz");
        assert_eq!(latin1_upper("Strauß"), "STRAUSS");
        assert_eq!(email_part("O'Brien"), "obrien");
        assert_eq!(email_part("de la Cruz"), "delacruz");
        assert_eq!(family_form("Kowalski/Kowalska", true), "Kowalska");
        assert_eq!(family_form("Kowalski/Kowalska", false), "Kowalski");
        assert_eq!(family_form("Nowak", true), "Nowak");
    }

    #[test]
    fn lists_have_no_duplicates_within_a_region() {
        for r in REGIONS {
            for list in [r.female, r.male, r.family] {
                let mut seen = std::collections::HashSet::new();
                for n in list {
                    assert!(seen.insert(*n), "{} lists {n} twice", r.name);
                }
            }
            assert!(r.home < super::super::org::LOCATIONS.len());
        }
        let given: usize = REGIONS.iter().map(|r| r.female.len() + r.male.len()).sum();
        let family: usize = REGIONS.iter().map(|r| r.family.len()).sum();
        assert!(
            given >= 300 && family >= 300,
            "{given} given, {family} family"
        );
    }
}
