//! Generates people one at a time, each with the source records that describe
//! them: zero, one or two Workday rows (two when rehired under a new
//! Worker_ID), at most one SAP row and at most one contractor row.
//!
//! Every person draws from their own random stream, so their name, dates and
//! membership in the sources depend only on (seed, index). What links people
//! (Worker_IDs and PERNRs handed out in order, e-mail addresses that must be
//! unique, manager trees) is kept in [`People`]; that state grows with the
//! number of managers and with the number of distinct name pairs (bounded by
//! the name lists), not with the number of people.

use super::calendar::{self, SAP_OPEN_END};
use super::names::{self, NICKNAMES, REGIONS, Region};
use super::org::{self, AGENCIES, DEPTS, LOCATIONS, SAP_STAFF};
use super::rng::SplitMix64;
use rustc_hash::FxHashMap;

/// One Workday row, in the order of [`super::WORKDAY_HEADER`].
pub type WorkdayRow = [String; 15];
/// One SAP row, in the order of [`super::SAP_HEADER`].
pub type SapRow = [String; 14];
/// One contractor row, in the order of [`super::CONTRACTOR_COLUMNS`]; `None` is SQL NULL.
pub type ContractorRow = [Option<String>; 12];

/// A generated person and every source record that is them.
#[derive(Debug, Clone)]
pub struct Person {
    pub index: usize,
    /// Oldest first; two rows when the person was rehired under a new id.
    pub workday: Vec<WorkdayRow>,
    pub sap: Option<SapRow>,
    pub contractor: Option<ContractorRow>,
    /// Who the person is before any system spelt it, for writers that
    /// describe the same people again (see [`super::unkeyed`]).
    pub(super) identity: Identity<'static>,
}

const BIRTH_FIRST: i64 = calendar::days(1955, 1, 1);
const BIRTH_LAST: i64 = calendar::days(2004, 12, 31);
const COMPANY_FOUNDED: i64 = calendar::days(1990, 1, 1);
const AGENCIES_SINCE: i64 = calendar::days(2012, 1, 1);
/// The generated world's "today": fixed, so output never depends on the clock.
const TODAY: i64 = calendar::days(2025, 6, 30);
const ADULT: i64 = 18 * 365 + 5;

/// Where a person appears; shares are per mille of all people.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Membership {
    ContractorOnly,
    SapOnly,
    /// In Workday; the flags say where else.
    Workday {
        sap: SapLink,
        contractor: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SapLink {
    None,
    /// Migrated: WORKDAY_ID carries the Worker_ID.
    SharedId,
    /// No shared id; only name and birth date connect the rows.
    NameOnly,
}

const CONTRACTOR_ONLY: u64 = 200;
const SAP_ONLY: u64 = 60;
/// Of Workday people (per mille): SAP with shared id, then SAP by name only.
const WD_SAP_SHARED: u64 = 311;
const WD_SAP_NAME: u64 = 230;
const WD_CONTRACTOR: u32 = 68;
const REHIRED: u32 = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Root,
    Head,
    Manager,
    Staff,
}

/// Managers of one system, per department. Only managers are remembered:
/// staff never have reports, so nobody needs to find them again.
struct Tree {
    root: Option<u32>,
    managers: Vec<Vec<u32>>,
    /// Every manager once more, so a sponsor can be drawn evenly.
    all: Vec<u32>,
}

impl Tree {
    fn new() -> Tree {
        Tree {
            root: None,
            managers: vec![Vec::new(); DEPTS.len()],
            all: Vec::new(),
        }
    }

    /// Places `id` in department `dept` and returns its role and manager. The
    /// first person placed becomes the root (and moves to department 0);
    /// a department's first manager reports to the root.
    fn place(
        &mut self,
        id: u32,
        dept: usize,
        may_manage: bool,
        r: &mut SplitMix64,
    ) -> (Role, Option<u32>) {
        let Some(root) = self.root else {
            self.root = Some(id);
            self.managers[0].push(id);
            self.all.push(id);
            return (Role::Root, None);
        };
        let ms = &mut self.managers[dept];
        if ms.is_empty() {
            if may_manage {
                ms.push(id);
                self.all.push(id);
                return (Role::Head, Some(root));
            }
            return (Role::Staff, Some(root));
        }
        if may_manage && r.chance(90) {
            // Half of the managers report straight to the head, which keeps
            // the trees broad rather than a long chain.
            let boss = if r.chance(500) { ms[0] } else { *r.pick(ms) };
            ms.push(id);
            self.all.push(id);
            (Role::Manager, Some(boss))
        } else {
            (Role::Staff, Some(*r.pick(ms)))
        }
    }

    /// Any manager, for contractor sponsors.
    fn any_manager(&self, r: &mut SplitMix64) -> Option<u32> {
        (!self.all.is_empty()).then(|| *r.pick(&self.all))
    }
}

/// The people of one run, in order. See the module docs for what it keeps.
pub struct People {
    seed: u64,
    count: usize,
    next: usize,
    next_worker: u32,
    next_pernr: u32,
    next_contractor: u32,
    workday: Tree,
    sap: Tree,
    /// E-mail local part → how many people have it.
    emails: FxHashMap<String, u32>,
    region_weights: Vec<u32>,
    dept_weights: Vec<u32>,
    location_weights: Vec<u32>,
}

/// The people of a run with `count` people and `seed`.
pub fn people(count: usize, seed: u64) -> People {
    People {
        seed,
        count,
        next: 0,
        next_worker: 100_001,
        next_pernr: 10_001,
        next_contractor: 1,
        workday: Tree::new(),
        sap: Tree::new(),
        emails: FxHashMap::default(),
        region_weights: REGIONS.iter().map(|r| r.weight).collect(),
        dept_weights: org::dept_weights(),
        location_weights: org::location_weights(),
    }
}

impl Iterator for People {
    type Item = Person;

    fn next(&mut self) -> Option<Person> {
        if self.next >= self.count {
            return None;
        }
        let index = self.next;
        self.next += 1;
        Some(self.person(index))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.count - self.next;
        (left, Some(left))
    }
}

impl ExactSizeIterator for People {}

/// Who someone is, before any system has written it down.
#[derive(Debug, Clone, Copy)]
pub(super) struct Identity<'a> {
    pub region: &'a Region,
    pub female: bool,
    pub given: &'static str,
    pub middle: Option<&'static str>,
    pub family: &'static str,
    /// Days since 1970-01-01.
    pub birth: i64,
}

/// One employment in Workday, as generated before it is written.
struct Employment {
    worker: u32,
    dept: usize,
    hire: i64,
    term: Option<i64>,
    status: &'static str,
    email: String,
    phone: String,
}

fn worker_id(n: u32) -> String {
    format!("W{n:06}")
}

fn pernr(n: u32) -> String {
    format!("{n:08}")
}

fn digits(r: &mut SplitMix64, n: u32) -> String {
    let mut s = String::with_capacity(n as usize);
    for _ in 0..n {
        s.push(char::from(b'0' + r.below(10) as u8));
    }
    s
}

impl People {
    fn person(&mut self, index: usize) -> Person {
        let mut r = SplitMix64::stream(self.seed, index as u64);
        let id = self.identity(&mut r);
        let membership = if index == 0 {
            // The first person is the CEO, so every tree has its root in
            // Workday before anyone needs a manager.
            Membership::Workday {
                sap: SapLink::None,
                contractor: false,
            }
        } else {
            let x = r.below(1000);
            if x < CONTRACTOR_ONLY {
                Membership::ContractorOnly
            } else if x < CONTRACTOR_ONLY + SAP_ONLY {
                Membership::SapOnly
            } else {
                let y = r.below(1000);
                let sap = if y < WD_SAP_SHARED {
                    SapLink::SharedId
                } else if y < WD_SAP_SHARED + WD_SAP_NAME {
                    SapLink::NameOnly
                } else {
                    SapLink::None
                };
                Membership::Workday {
                    sap,
                    contractor: r.chance(WD_CONTRACTOR),
                }
            }
        };
        let mut person = Person {
            index,
            workday: Vec::new(),
            sap: None,
            contractor: None,
            identity: id,
        };
        match membership {
            Membership::ContractorOnly => {
                person.contractor = Some(self.contractor_only(&id, &mut r));
            }
            Membership::SapOnly => {
                person.sap = Some(self.sap_only(&id, &mut r));
            }
            Membership::Workday { sap, contractor } => {
                let (rows, current) = self.workday(&id, index == 0, &mut r);
                person.workday = rows;
                if sap != SapLink::None {
                    person.sap = Some(self.sap_of_employee(&id, &current, sap, &mut r));
                }
                if contractor {
                    person.contractor = Some(self.contractor_of_employee(&id, &current, &mut r));
                }
            }
        }
        person
    }

    pub(super) fn identity(&self, r: &mut SplitMix64) -> Identity<'static> {
        let region = &REGIONS[r.weighted(&self.region_weights)];
        let female = r.chance(500);
        let given = *r.pick_skewed(if female { region.female } else { region.male });
        let family_region = if r.chance(80) {
            &REGIONS[r.weighted(&self.region_weights)]
        } else {
            region
        };
        let &entry = r.pick_skewed(family_region.family);
        let family = names::family_form(entry, female);
        let middle = if r.chance(region.middle) {
            let pool = if female && !region.paternal_middle {
                region.female
            } else {
                region.male
            };
            Some(*r.pick(pool)).filter(|m| *m != given)
        } else {
            None
        };
        let birth = r.between(BIRTH_FIRST, BIRTH_LAST);
        Identity {
            region,
            female,
            given,
            middle,
            family,
            birth,
        }
    }

    /// `first.last@example.com`, with a number from the second holder on.
    fn take_email(&mut self, given: &str, family: &str) -> String {
        let local = format!("{}.{}", names::email_part(given), names::email_part(family));
        let n = match self.emails.get_mut(&local) {
            Some(n) => {
                *n += 1;
                *n
            }
            None => {
                self.emails.insert(local.clone(), 1);
                1
            }
        };
        if n == 1 {
            format!("{local}@example.com")
        } else {
            format!("{local}{n}@example.com")
        }
    }

    fn location(&self, id: &Identity, r: &mut SplitMix64) -> usize {
        if r.chance(550) {
            id.region.home
        } else {
            r.weighted(&self.location_weights)
        }
    }

    fn phone(&self, loc: usize, r: &mut SplitMix64) -> String {
        let l = &LOCATIONS[loc];
        let mut s = format!("{}{}", l.phone.0, digits(r, l.phone.1));
        if r.chance(250) {
            s.push('|');
            s.push_str(l.mobile.0);
            s.push_str(&digits(r, l.mobile.1));
        }
        s
    }

    fn preferred(&self, id: &Identity, r: &mut SplitMix64) -> String {
        if let Some((_, nick)) = NICKNAMES.iter().find(|(g, _)| *g == id.given) {
            if r.chance(300) {
                return (*nick).to_string();
            }
        } else if matches!(
            id.region.name,
            "chinese" | "korean" | "vietnamese" | "southeast-asian"
        ) && r.chance(150)
        {
            let (f, m) = names::ADOPTED;
            return (*r.pick(if id.female { f } else { m })).to_string();
        }
        String::new()
    }

    /// The person's Workday rows and the current employment.
    fn workday(
        &mut self,
        id: &Identity,
        ceo: bool,
        r: &mut SplitMix64,
    ) -> (Vec<WorkdayRow>, Employment) {
        let dept = if ceo {
            0
        } else {
            r.weighted(&self.dept_weights)
        };
        let loc = self.location(id, r);
        let earliest = (id.birth + ADULT).max(COMPANY_FOUNDED);
        // The later of two draws: the company grew, so recent hires dominate.
        let hire = r.between(earliest, TODAY).max(r.between(earliest, TODAY));
        let status = match r.below(1000) {
            _ if ceo => "Active",
            0..70 => "Terminated",
            70..100 => "Leave",
            _ => "Active",
        };
        let term = (status == "Terminated").then(|| r.between((hire + 30).min(TODAY), TODAY));
        let preferred = self.preferred(id, r);
        let mut rows = Vec::with_capacity(1);
        // A rehire: an earlier, terminated record under another Worker_ID,
        // same name and birth date. Nothing in Workday links the two.
        if !ceo && status != "Terminated" && hire - earliest > 1200 && r.chance(REHIRED) {
            let old_hire = r.between(earliest, hire - 1000);
            let old_term = r.between(old_hire + 200, hire - 60);
            let old = Employment {
                worker: self.next_worker,
                dept: r.weighted(&self.dept_weights),
                hire: old_hire,
                term: Some(old_term),
                status: "Terminated",
                email: self.take_email(id.given, id.family),
                phone: self.phone(loc, r),
            };
            self.next_worker += 1;
            rows.push(self.workday_row(id, old, &preferred, loc, r).0);
        }
        let current = Employment {
            worker: self.next_worker,
            dept,
            hire,
            term,
            status,
            email: self.take_email(id.given, id.family),
            phone: self.phone(loc, r),
        };
        self.next_worker += 1;
        let (row, current) = self.workday_row(id, current, &preferred, loc, r);
        rows.push(row);
        (rows, current)
    }

    /// The row of one employment, and the employment as the org chart left
    /// it (the root moves to the executive office, managers are active).
    fn workday_row(
        &mut self,
        id: &Identity,
        mut e: Employment,
        preferred: &str,
        loc: usize,
        r: &mut SplitMix64,
    ) -> (WorkdayRow, Employment) {
        let (role, manager) = self
            .workday
            .place(e.worker, e.dept, e.status != "Terminated", r);
        if role == Role::Root {
            e.dept = 0;
        }
        if role != Role::Staff {
            // A manager on leave would still be one, but keeping managers
            // active makes the generated trees easier to reason about.
            e.status = "Active";
        }
        let d = &DEPTS[e.dept];
        let title = match role {
            Role::Root => "Chief Executive Officer".to_string(),
            Role::Head if r.chance(600) => format!("Director, {}", d.name),
            Role::Head => format!("Head of {}", d.name),
            Role::Manager if r.chance(500) => format!("{} Manager", d.name),
            Role::Manager => format!("Team Lead, {}", d.name),
            Role::Staff => (*r.pick(d.titles)).to_string(),
        };
        let row = [
            worker_id(e.worker),
            id.given.to_string(),
            id.middle.unwrap_or_default().to_string(),
            id.family.to_string(),
            preferred.to_string(),
            calendar::iso(id.birth),
            e.email.clone(),
            d.name.to_string(),
            title,
            manager.map(worker_id).unwrap_or_default(),
            calendar::iso(e.hire),
            e.term.map(calendar::iso).unwrap_or_default(),
            e.status.to_string(),
            LOCATIONS[loc].name.to_string(),
            e.phone.clone(),
        ];
        (row, e)
    }

    /// An SAP row for someone who is also in Workday.
    fn sap_of_employee(
        &mut self,
        id: &Identity,
        e: &Employment,
        link: SapLink,
        r: &mut SplitMix64,
    ) -> SapRow {
        let style = match link {
            // Rows keyed in by hand at the subsidiary: mostly upper case
            // without diacritics, the hardest kind to join.
            SapLink::NameOnly => match r.below(100) {
                0..45 => NameStyle::UpperAscii,
                45..85 => NameStyle::AsIs,
                _ => NameStyle::Upper,
            },
            _ => match r.below(100) {
                0..25 => NameStyle::UpperAscii,
                25..35 => NameStyle::Upper,
                _ => NameStyle::AsIs,
            },
        };
        let (stat2, leave) = match (e.status, e.term) {
            (_, Some(t)) => ("0", Some(t)),
            ("Leave", None) => ("1", None),
            _ => ("3", None),
        };
        let workday_id = if link == SapLink::SharedId {
            worker_id(e.worker)
        } else {
            String::new()
        };
        let phone = if r.chance(400) {
            e.phone.split('|').next().unwrap_or_default().to_string()
        } else {
            format!("+49 89 4567-{}", digits(r, 3))
        };
        self.sap_row(
            id, style, workday_id, e.dept, e.hire, stat2, leave, phone, r,
        )
    }

    fn sap_only(&mut self, id: &Identity, r: &mut SplitMix64) -> SapRow {
        let style = if r.chance(100) {
            NameStyle::Upper
        } else {
            NameStyle::AsIs
        };
        let dept = r.weighted(&self.dept_weights);
        let earliest = (id.birth + ADULT).max(COMPANY_FOUNDED);
        let entry = r.between(earliest, TODAY).max(r.between(earliest, TODAY));
        let (stat2, leave) = match r.below(1000) {
            0..80 => ("0", Some(r.between((entry + 30).min(TODAY), TODAY))),
            80..100 => ("1", None),
            _ => ("3", None),
        };
        let phone = format!("+49 89 4567-{}", digits(r, 3));
        self.sap_row(
            id,
            style,
            String::new(),
            dept,
            entry,
            stat2,
            leave,
            phone,
            r,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn sap_row(
        &mut self,
        id: &Identity,
        style: NameStyle,
        workday_id: String,
        dept: usize,
        entry: i64,
        stat2: &'static str,
        leave: Option<i64>,
        phone: String,
        r: &mut SplitMix64,
    ) -> SapRow {
        let number = self.next_pernr;
        self.next_pernr += 1;
        let (role, manager) = self.sap.place(number, dept, stat2 != "0", r);
        let dept = if role == Role::Root { 0 } else { dept };
        let stat2 = if role == Role::Staff { stat2 } else { "3" };
        let leave = if role == Role::Staff { leave } else { None };
        let d = &DEPTS[dept];
        let title = match role {
            Role::Root => "Geschäftsführer/in".to_string(),
            Role::Head => format!("Leiter/in {}", d.sap),
            Role::Manager => format!("Teamleiter/in {}", d.sap),
            Role::Staff => format!("{} {}", r.pick(SAP_STAFF), d.sap),
        };
        // Middle names go to MIDNM, or shrink to an initial after the given
        // name ("Anna M."), or are left out, as different clerks did it.
        let (vorna, midnm) = match id.middle {
            Some(m) => match r.below(10) {
                0..3 => (format!("{} {}.", id.given, first_char(m)), String::new()),
                3..8 => (id.given.to_string(), m.to_string()),
                _ => (id.given.to_string(), String::new()),
            },
            None => (id.given.to_string(), String::new()),
        };
        let kostl = 41_000_000 + dept as u64 * 10_000 + r.below(5) * 100;
        [
            pernr(number),
            style.apply(id.family),
            style.apply(&vorna),
            style.apply(&midnm),
            calendar::sap(id.birth),
            workday_id,
            d.sap.to_string(),
            title,
            manager.map(pernr).unwrap_or_default(),
            calendar::sap(entry),
            leave
                .map(calendar::sap)
                .unwrap_or_else(|| SAP_OPEN_END.to_string()),
            stat2.to_string(),
            format!("{kostl:010}"),
            names::latin1(&phone),
        ]
    }

    fn contractor_only(&mut self, id: &Identity, r: &mut SplitMix64) -> ContractorRow {
        let (agency, domain) = *r.pick(AGENCIES);
        let g = names::email_part(id.given);
        let f = names::email_part(id.family);
        let email = match r.below(3) {
            0 => format!("{g}.{f}@{domain}"),
            1 => format!("{}.{f}@{domain}", g.get(..1).unwrap_or_default()),
            _ => format!("{g}{f}@{domain}"),
        };
        let given = match id.middle {
            Some(m) if r.chance(500) => format!("{} {m}", id.given),
            _ => id.given.to_string(),
        };
        let start = r.between(AGENCIES_SINCE.max(id.birth + ADULT), TODAY - 14);
        let (end, status) = if r.chance(350) {
            let end = r.between((start + 60).min(TODAY - 1), (start + 900).min(TODAY - 1));
            (Some(end), "ended")
        } else if r.chance(500) {
            (None, "active")
        } else {
            (Some(r.between(TODAY + 30, TODAY + 400)), "active")
        };
        let birth = (!r.chance(250)).then_some(id.birth);
        self.contractor_row(
            given,
            id.family.to_string(),
            birth,
            email,
            agency,
            start,
            end,
            status,
            r,
        )
    }

    /// A contractor record of someone who is also an employee: mostly the
    /// contract that came before the hire, carrying the work e-mail address
    /// the person already had, often under a plainer spelling of the name.
    fn contractor_of_employee(
        &mut self,
        id: &Identity,
        e: &Employment,
        r: &mut SplitMix64,
    ) -> ContractorRow {
        let (agency, _) = *r.pick(AGENCIES);
        let adult = AGENCIES_SINCE.max(id.birth + ADULT);
        // A contract needs room before the hire; otherwise it runs alongside.
        let (start, end, status) = if e.hire - adult > 120 && r.chance(800) {
            let end = e.hire - r.between(1, 60);
            let start = (end - r.between(90, 720)).max(adult);
            (start, Some(end), "ended")
        } else {
            let start = r.between(adult.max(e.hire - 365), TODAY - 30);
            (start, None, "active")
        };
        let email = if r.chance(350) {
            title_case_email(&e.email)
        } else {
            e.email.clone()
        };
        let (given, family) = match r.below(10) {
            0..5 => (id.given.to_string(), id.family.to_string()),
            5..8 => (names::ascii_fold(id.given), names::ascii_fold(id.family)),
            8 => (
                names::ascii_fold(id.given),
                names::ascii_fold(id.family).replace(['\'', ' '], ""),
            ),
            _ => {
                let nick = NICKNAMES
                    .iter()
                    .find(|(g, _)| *g == id.given)
                    .map(|(_, n)| *n)
                    .unwrap_or(id.given);
                (nick.to_string(), id.family.to_string())
            }
        };
        let birth = (!r.chance(300)).then_some(id.birth);
        self.contractor_row(given, family, birth, email, agency, start, end, status, r)
    }

    #[allow(clippy::too_many_arguments)]
    fn contractor_row(
        &mut self,
        given: String,
        family: String,
        birth: Option<i64>,
        email: String,
        agency: &str,
        start: i64,
        end: Option<i64>,
        status: &str,
        r: &mut SplitMix64,
    ) -> ContractorRow {
        let number = self.next_contractor;
        self.next_contractor += 1;
        let sponsor = self.workday.any_manager(r).map(worker_id);
        let touched = match end {
            Some(e) if e <= TODAY => r.between(e, (e + 30).min(TODAY)),
            _ => r.between((start - 14).max(AGENCIES_SINCE), TODAY),
        };
        let second = r.between(7 * 3600, 19 * 3600) as u32;
        [
            Some(format!("C-{number:04}")),
            Some(given),
            Some(family),
            birth.map(calendar::iso),
            Some(email),
            Some(agency.to_string()),
            sponsor,
            Some(calendar::iso(start)),
            end.map(calendar::iso),
            Some(status.to_string()),
            Some(calendar::iso_datetime(touched, second)),
            // The database deletes softly; every generated row is current.
            Some("0".to_string()),
        ]
    }
}

/// How an SAP clerk wrote a name.
#[derive(Debug, Clone, Copy)]
enum NameStyle {
    /// As in Workday, as far as Latin-1 allows (`Öztürk`, `Wisniewski`).
    AsIs,
    /// Upper case, Latin-1 diacritics kept (`ÖZTÜRK`).
    Upper,
    /// Upper case, no diacritics (`MULLER`, `JOSE`).
    UpperAscii,
}

impl NameStyle {
    fn apply(self, s: &str) -> String {
        match self {
            NameStyle::AsIs => names::latin1(s),
            NameStyle::Upper => names::latin1_upper(s),
            NameStyle::UpperAscii => names::ascii_fold(s).to_ascii_uppercase(),
        }
    }
}

fn first_char(s: &str) -> char {
    s.chars().next().unwrap_or('X')
}

/// `maria.garcia2@example.com` → `Maria.Garcia2@Example.com`: how people type
/// their address into a form; mail systems ignore the case, exact matching
/// does not.
fn title_case_email(email: &str) -> String {
    let (local, domain) = email.split_once('@').unwrap_or((email, ""));
    let mut out = String::with_capacity(email.len());
    let mut start = true;
    for c in local.chars() {
        out.push(if start { c.to_ascii_uppercase() } else { c });
        start = matches!(c, '.' | '-');
    }
    out.push('@');
    let mut domain = domain.chars();
    out.extend(domain.next().map(|c| c.to_ascii_uppercase()));
    out.extend(domain);
    out
}
