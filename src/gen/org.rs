//! The organisation the generated people work in: departments with their SAP
//! org-unit texts and job titles, office locations with their phone plans,
//! and the staffing agencies contractors come through.
//!
//! Some values are chosen for the quoting they force, not only for realism:
//! titles such as `Director, Finance` contain the delimiter, one location
//! holds a line break and another a comma, so any generated Workday file
//! exercises the same CSV quirks as the bundled example.

pub struct Dept {
    pub name: &'static str,
    /// ORGTX in the German subsidiary's SAP system.
    pub sap: &'static str,
    /// Relative headcount.
    pub weight: u32,
    /// Workday titles of individual contributors.
    pub titles: &'static [&'static str],
}

/// Index 0 is the executive office, where the CEO and the SAP managing
/// director sit.
pub static DEPTS: &[Dept] = &[
    Dept {
        name: "Executive Office",
        sap: "Geschäftsführung",
        weight: 2,
        titles: &["Executive Assistant", "Chief of Staff", "Strategy Analyst"],
    },
    Dept {
        name: "Finance",
        sap: "Finanzen",
        weight: 30,
        titles: &[
            "Financial Analyst",
            "Senior Financial Analyst",
            "Finance Business Partner",
        ],
    },
    Dept {
        name: "Accounting",
        sap: "Rechnungswesen",
        weight: 25,
        titles: &[
            "Accountant",
            "Senior Accountant",
            "Accounts Payable Specialist",
            "Accounts Receivable Specialist",
        ],
    },
    Dept {
        name: "Treasury",
        sap: "Treasury",
        weight: 6,
        titles: &["Treasury Analyst", "Cash Manager"],
    },
    Dept {
        name: "Tax",
        sap: "Steuern",
        weight: 6,
        titles: &["Tax Specialist", "Senior Tax Advisor"],
    },
    Dept {
        name: "Internal Audit",
        sap: "Interne Revision",
        weight: 5,
        titles: &["Internal Auditor", "IT Auditor"],
    },
    Dept {
        name: "Legal",
        sap: "Recht",
        weight: 10,
        titles: &["Legal Counsel", "Paralegal", "Contract Manager"],
    },
    Dept {
        name: "Compliance",
        sap: "Compliance",
        weight: 6,
        titles: &["Compliance Officer", "Privacy Analyst"],
    },
    Dept {
        name: "People & Culture",
        sap: "Personal",
        weight: 20,
        titles: &[
            "HR Business Partner",
            "Recruiter",
            "HR Generalist",
            "Talent Acquisition Partner",
        ],
    },
    Dept {
        name: "Payroll",
        sap: "Entgeltabrechnung",
        weight: 8,
        titles: &["Payroll Specialist", "Payroll Administrator"],
    },
    Dept {
        name: "Learning & Development",
        sap: "Personalentwicklung",
        weight: 6,
        titles: &["Learning Designer", "Training Coordinator"],
    },
    Dept {
        name: "Software Engineering",
        sap: "Softwareentwicklung",
        weight: 120,
        titles: &[
            "Software Engineer",
            "Senior Software Engineer",
            "Staff Engineer",
            "Junior Software Engineer",
        ],
    },
    Dept {
        name: "Platform Engineering",
        sap: "Plattformentwicklung",
        weight: 40,
        titles: &[
            "Site Reliability Engineer",
            "Platform Engineer",
            "DevOps Engineer",
        ],
    },
    Dept {
        name: "Data & Analytics",
        sap: "Data & Analytics",
        weight: 30,
        titles: &["Data Engineer", "Data Scientist", "BI Analyst"],
    },
    Dept {
        name: "Quality Assurance",
        sap: "Qualitätssicherung",
        weight: 20,
        titles: &["QA Engineer", "Test Automation Engineer"],
    },
    Dept {
        name: "IT Operations",
        sap: "IT-Betrieb",
        weight: 30,
        titles: &[
            "IT Support Specialist",
            "Systems Administrator",
            "Network Engineer",
        ],
    },
    Dept {
        name: "Information Security",
        sap: "Informationssicherheit",
        weight: 15,
        titles: &[
            "Security Analyst",
            "Security Engineer",
            "Engineer, Identity & Access Management",
        ],
    },
    Dept {
        name: "Product Management",
        sap: "Produktmanagement",
        weight: 20,
        titles: &["Product Manager", "Senior Product Manager", "Product Owner"],
    },
    Dept {
        name: "Design",
        sap: "Design",
        weight: 12,
        titles: &["Product Designer", "UX Researcher", "UX Writer"],
    },
    Dept {
        name: "Sales",
        sap: "Vertrieb",
        weight: 90,
        titles: &[
            "Account Executive",
            "Sales Development Representative",
            "Inside Sales Representative",
            "Account Manager",
        ],
    },
    Dept {
        name: "Sales Operations",
        sap: "Vertriebssteuerung",
        weight: 10,
        titles: &["Sales Operations Analyst", "Analyst, Deal Desk"],
    },
    Dept {
        name: "Customer Success",
        sap: "Kundenbetreuung",
        weight: 40,
        titles: &["Customer Success Manager", "Onboarding Specialist"],
    },
    Dept {
        name: "Customer Support",
        sap: "Kundenservice",
        weight: 80,
        titles: &["Support Agent", "Senior Support Agent", "Support Engineer"],
    },
    Dept {
        name: "Marketing",
        sap: "Marketing",
        weight: 30,
        titles: &[
            "Marketing Manager",
            "Content Strategist",
            "Campaign Specialist",
        ],
    },
    Dept {
        name: "Communications",
        sap: "Unternehmenskommunikation",
        weight: 8,
        titles: &["Communications Specialist", "Press Officer"],
    },
    Dept {
        name: "Procurement",
        sap: "Einkauf",
        weight: 12,
        titles: &["Buyer", "Strategic Buyer", "Procurement Analyst"],
    },
    Dept {
        name: "Facilities",
        sap: "Gebäudemanagement",
        weight: 12,
        titles: &["Facilities Coordinator", "Office Manager", "Receptionist"],
    },
    Dept {
        name: "Logistics",
        sap: "Logistik",
        weight: 40,
        titles: &["Logistics Coordinator", "Warehouse Operative", "Dispatcher"],
    },
    Dept {
        name: "Manufacturing",
        sap: "Produktion",
        weight: 60,
        titles: &[
            "Production Operator",
            "Process Engineer",
            "Maintenance Technician",
        ],
    },
    Dept {
        name: "Research & Development",
        sap: "Forschung & Entwicklung",
        weight: 30,
        titles: &["Research Scientist", "Lab Technician", "Engineer, R&D"],
    },
    Dept {
        name: "Consulting Services",
        sap: "Beratung",
        weight: 35,
        titles: &["Consultant", "Senior Consultant", "Solution Architect"],
    },
];

pub fn dept_weights() -> Vec<u32> {
    DEPTS.iter().map(|d| d.weight).collect()
}

/// SAP position texts below the head of an org unit; the org text is appended.
pub static SAP_STAFF: &[&str] = &[
    "Sachbearbeiter/in",
    "Referent/in",
    "Spezialist/in",
    "Senior Referent/in",
    "Fachkraft",
];

pub struct Location {
    pub name: &'static str,
    pub weight: u32,
    /// Landline prefix and how many random digits follow it.
    pub phone: (&'static str, u32),
    pub mobile: (&'static str, u32),
}

pub static LOCATIONS: &[Location] = &[
    Location {
        name: "London",
        weight: 120,
        phone: ("+44 20 7946 ", 4),
        mobile: ("+44 7700 900", 3),
    },
    Location {
        name: "New York",
        weight: 90,
        phone: ("+1 212 555 ", 4),
        mobile: ("+1 917 555 ", 4),
    },
    Location {
        name: "Berlin",
        weight: 60,
        phone: ("+49 30 901820 ", 2),
        mobile: ("+49 151 2345", 4),
    },
    Location {
        name: "Milan",
        weight: 30,
        phone: ("+39 02 8901 ", 4),
        mobile: ("+39 312 345 ", 4),
    },
    Location {
        name: "Madrid",
        weight: 40,
        phone: ("+34 91 123 ", 4),
        mobile: ("+34 612 34 ", 4),
    },
    Location {
        name: "Paris",
        weight: 40,
        phone: ("+33 1 70 36 ", 4),
        mobile: ("+33 6 12 34 ", 4),
    },
    Location {
        name: "Toronto",
        weight: 30,
        phone: ("+1 416 555 ", 4),
        mobile: ("+1 647 555 ", 4),
    },
    Location {
        name: "São Paulo",
        weight: 30,
        phone: ("+55 11 3090 ", 4),
        mobile: ("+55 11 91234 ", 4),
    },
    Location {
        name: "Bengaluru",
        weight: 70,
        phone: ("+91 80 4567 ", 4),
        mobile: ("+91 98450 ", 5),
    },
    Location {
        name: "Amsterdam",
        weight: 25,
        phone: ("+31 20 123 ", 4),
        mobile: ("+31 6 1234 ", 4),
    },
    Location {
        name: "Stockholm",
        weight: 20,
        phone: ("+46 8 123 456 ", 2),
        mobile: ("+46 70 123 ", 4),
    },
    Location {
        name: "Warsaw",
        weight: 30,
        phone: ("+48 22 123 ", 4),
        mobile: ("+48 512 345 ", 3),
    },
    Location {
        name: "Istanbul",
        weight: 20,
        phone: ("+90 212 555 ", 4),
        mobile: ("+90 532 555 ", 4),
    },
    Location {
        name: "Dubai",
        weight: 20,
        phone: ("+971 4 123 ", 4),
        mobile: ("+971 50 123 ", 4),
    },
    Location {
        name: "Singapore",
        weight: 40,
        phone: ("+65 6123 ", 4),
        mobile: ("+65 9123 ", 4),
    },
    Location {
        name: "Tokyo",
        weight: 25,
        phone: ("+81 3 1234 ", 4),
        mobile: ("+81 90 1234 ", 4),
    },
    Location {
        name: "Lagos",
        weight: 20,
        phone: ("+234 1 123 ", 4),
        mobile: ("+234 803 123 ", 4),
    },
    Location {
        name: "Munich",
        weight: 50,
        phone: ("+49 89 2180 ", 4),
        mobile: ("+49 171 2345", 4),
    },
    Location {
        name: "Berlin HQ\nFriedrichstraße 68",
        weight: 15,
        phone: ("+49 30 901820 ", 2),
        mobile: ("+49 151 2345", 4),
    },
    Location {
        name: "Zürich, Seefeld",
        weight: 10,
        phone: ("+41 44 123 ", 4),
        mobile: ("+41 79 123 ", 4),
    },
];

pub fn location_weights() -> Vec<u32> {
    LOCATIONS.iter().map(|l| l.weight).collect()
}

/// Staffing agencies: (name, mail domain of the people they place).
pub static AGENCIES: &[(&str, &str)] = &[
    ("Nimbus Staffing", "nimbus-staffing.example"),
    ("Brightwater Consulting", "brightwater.example"),
    ("Kestrel IT Services", "kestrel-it.example"),
    ("Meridian Talent", "meridian-talent.example"),
    ("Harbour & Finch", "harbourfinch.example"),
    ("Polaris Interim", "polaris-interim.example"),
    ("Cobalt Engineering Partners", "cobalt-ep.example"),
    ("Lumen Workforce Solutions", "lumen-workforce.example"),
    ("Arcadia Freelance Network", "arcadia-freelance.example"),
    ("Tessera Contracting", "tessera.example"),
];
