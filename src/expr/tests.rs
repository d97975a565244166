//! End-to-end tests of the expression language through the public API:
//! compile against a scope, evaluate over a small object. They pin the
//! semantics rule authors rely on (null handling, multi-values, Unicode,
//! runtime errors) and the exact wording of compile errors as rendered.

use super::*;
use chrono::{NaiveDate, TimeZone};
use std::collections::HashSet;

const NAMES: &[&str] = &[
    "givenName",
    "sn",
    "mail",
    "email",
    "dept",
    "proxyAddresses",
    "hireDate",
    "active",
    "empty",
    "Legal First Name",
    "Legal_First_Name",
    "n",
    "culture",
    "whenCreated",
    "accountExpires",
    "msDS-cloudExtensionAttribute1",
    "missing",
];

pub(super) struct Names;

impl Scope for Names {
    fn resolve(&self, name: &str) -> Option<u32> {
        NAMES.iter().position(|n| *n == name).map(|i| i as u32)
    }
    fn names(&self) -> Vec<String> {
        NAMES.iter().map(|s| s.to_string()).collect()
    }
}

#[derive(Default)]
pub(super) struct Obj(Vec<Vec<String>>);

impl Input for Obj {
    fn count(&self, attr: u32) -> usize {
        self.0.get(attr as usize).map_or(0, Vec::len)
    }
    fn nth(&self, attr: u32, i: usize) -> Option<&str> {
        self.0.get(attr as usize)?.get(i).map(String::as_str)
    }
}

pub(super) fn obj(pairs: &[(&str, &[&str])]) -> Obj {
    let mut o = Obj(vec![Vec::new(); NAMES.len()]);
    for (name, values) in pairs {
        let i = Names
            .resolve(name)
            .unwrap_or_else(|| panic!("no attribute {name}"));
        o.0[i as usize] = values.iter().map(|s| s.to_string()).collect();
    }
    o
}

/// The object most tests read.
fn john() -> Obj {
    obj(&[
        ("givenName", &["John"]),
        ("sn", &["Doe"]),
        ("mail", &["jdoe@contoso.com"]),
        ("dept", &["20"]),
        ("proxyAddresses", &["smtp:a@x", "SMTP:b@x"]),
        ("hireDate", &["2020-01-01"]),
        ("active", &["True"]),
        ("Legal First Name", &["Jöhn"]),
        ("whenCreated", &["20150123105347.0Z"]),
        ("culture", &["tr-TR"]),
        ("n", &["abc"]),
    ])
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 6, 15, 12, 0, 0).unwrap()
}

pub(super) fn ctx() -> Context<'static> {
    Context {
        now: now(),
        object_key: "hr:1001",
        unique: None,
    }
}

pub(super) fn compile(src: &str) -> Expr {
    Expr::compile(src, &Names).unwrap_or_else(|e| {
        let shown: Vec<_> = e.iter().map(|e| render_error(src, e)).collect();
        panic!("{}", shown.join("\n"))
    })
}

fn ev_on(src: &str, o: &Obj) -> Value {
    compile(src)
        .eval(o, &ctx())
        .unwrap_or_else(|e| panic!("{src}: {e}"))
}

fn ev(src: &str) -> Value {
    ev_on(src, &john())
}

fn ev_err(src: &str) -> String {
    match compile(src).eval(&john(), &ctx()) {
        Ok(v) => panic!("{src}: expected an error, got {v:?}"),
        Err(e) => e.message,
    }
}

fn errs(src: &str) -> Vec<String> {
    match Expr::compile(src, &Names) {
        Ok(_) => panic!("{src}: expected compile errors"),
        Err(e) => e.iter().map(|e| render_error(src, e)).collect(),
    }
}

fn s(v: &str) -> Value {
    Value::Str(v.to_string())
}

fn list(items: &[&str]) -> Value {
    Value::List(items.iter().map(|v| s(v)).collect())
}

fn date(y: i32, m: u32, d: u32, h: u32, mi: u32, sec: u32) -> Value {
    Value::Date(
        NaiveDate::from_ymd_opt(y, m, d)
            .unwrap()
            .and_hms_opt(h, mi, sec)
            .unwrap(),
    )
}

// ---- references, literals, operators -------------------------------------

#[test]
fn attribute_references() {
    assert_eq!(ev("givenName"), s("John"));
    assert_eq!(ev("[givenName]"), s("John"));
    assert_eq!(ev("[ Legal First Name ]"), s("Jöhn"));
    assert_eq!(ev("msDS-cloudExtensionAttribute1"), Value::Null);
    assert_eq!(ev("[proxyAddresses]"), list(&["smtp:a@x", "SMTP:b@x"]));
    assert_eq!(ev("[empty]"), Value::Null);

    let e = compile("[sn]");
    assert_eq!(e.as_attr(), Names.resolve("sn"));
    assert_eq!(e.attrs(), vec![1]);
    assert_eq!(e.source(), "[sn]");
    let e = compile("Join(\" \", [sn], givenName, [sn])");
    assert_eq!(e.as_attr(), None);
    assert_eq!(e.attrs(), vec![0, 1]);
    assert!(!e.needs_unique());
}

#[test]
fn literals_and_constant_folding() {
    assert_eq!(
        ev(r#""a \"quoted\" \\ back\slash""#),
        s(r#"a "quoted" \ back\slash"#)
    );
    assert_eq!(ev("42"), Value::Num(42.0));
    assert_eq!(ev("-1.5"), Value::Num(-1.5));
    assert_eq!(ev("TRUE"), Value::Bool(true));
    assert_eq!(ev("null"), Value::Null);

    let e = compile(r#"ToUpper(Left("abcdef", 3)) & "-" & 7"#);
    assert_eq!(e.as_const(), Some(&s("ABC-7")));
    assert!(e.attrs().is_empty());
    assert_eq!(compile("Now()").as_const(), None);
    assert_eq!(compile("Guid()").as_const(), None);
}

#[test]
fn concatenation_treats_null_as_empty() {
    assert_eq!(ev(r#"[givenName] & "." & [sn]"#), s("John.Doe"));
    assert_eq!(ev(r#"[givenName] & [empty] & "!""#), s("John!"));
    assert_eq!(ev("[empty] & [empty]"), s(""));
    assert_eq!(ev("[empty] & [empty]").to_strings(), Vec::<String>::new());
    assert_eq!(ev(r#""n=" & 1.5 & true"#), s("n=1.5true"));
    assert_eq!(
        ev(r#""x:" & [proxyAddresses]"#),
        list(&["x:smtp:a@x", "x:SMTP:b@x"])
    );
    assert_eq!(
        ev_err("[proxyAddresses] & [proxyAddresses]"),
        "&: cannot join two multi-valued values; use Join() to flatten one"
    );
}

#[test]
fn comparisons() {
    // Numbers when both sides are numbers.
    assert_eq!(ev(r#""10" > "9""#), Value::Bool(true));
    assert_eq!(ev(r#""007" = 7"#), Value::Bool(true));
    assert_eq!(ev("[dept] >= 20"), Value::Bool(true));
    // Dates when both sides are dates.
    assert_eq!(
        ev(r#"[hireDate] < "2020-01-01T00:00:01""#),
        Value::Bool(true)
    );
    assert_eq!(
        ev(r#"[hireDate] = "2020-01-01T00:00:00Z""#),
        Value::Bool(true)
    );
    assert_eq!(ev("[hireDate] < Now()"), Value::Bool(true));
    // Otherwise text, ordinal and case-sensitive.
    assert_eq!(ev(r#""a" < "b""#), Value::Bool(true));
    assert_eq!(ev(r#""B" < "a""#), Value::Bool(true));
    assert_eq!(ev(r#"[sn] = "doe""#), Value::Bool(false));
    assert_eq!(ev(r#"[sn] <> "doe""#), Value::Bool(true));
    assert_eq!(ev(r#"[sn] != "Doe""#), Value::Bool(false));
    assert_eq!(ev(r#""é" > "z""#), Value::Bool(true));
    // Booleans against text that reads as one.
    assert_eq!(ev("[active] = true"), Value::Bool(true));
    assert_eq!(ev("[sn] = true"), Value::Bool(false));
    // Null equals only null and empty; orderings with null are false.
    assert_eq!(ev("[empty] = null"), Value::Bool(true));
    assert_eq!(ev(r#"[empty] = """#), Value::Bool(true));
    assert_eq!(ev("[empty] = [sn]"), Value::Bool(false));
    assert_eq!(ev("[empty] <> [sn]"), Value::Bool(true));
    assert_eq!(ev("[empty] < 5"), Value::Bool(false));
    assert_eq!(ev("[empty] >= 5"), Value::Bool(false));
    // Multi-valued: any value.
    assert_eq!(ev(r#"[proxyAddresses] = "SMTP:b@x""#), Value::Bool(true));
    assert_eq!(ev(r#"[proxyAddresses] <> "SMTP:b@x""#), Value::Bool(false));
    assert_eq!(ev(r#"[proxyAddresses] <> "c""#), Value::Bool(true));
}

#[test]
fn boolean_logic_precedence_and_short_circuit() {
    assert_eq!(ev(r#"[sn] = "Doe" and [dept] = 20"#), Value::Bool(true));
    assert_eq!(
        ev(r#"[sn] = "X" or [dept] = 20 and [active]"#),
        Value::Bool(true)
    );
    assert_eq!(ev(r#"not [sn] = "X""#), Value::Bool(true));
    assert_eq!(ev(r#"NOT [active] OR false"#), Value::Bool(false));
    assert_eq!(ev("not [empty]"), Value::Bool(true));
    // The right side is never evaluated when the left decides.
    assert_eq!(ev("false and CDate([sn]) = 1"), Value::Bool(false));
    assert_eq!(ev("true or CDate([sn]) = 1"), Value::Bool(true));
    assert_eq!(ev_err("[sn] and true"), "and: \"Doe\" is not true or false");
    assert_eq!(
        ev_err("not [proxyAddresses]"),
        "not: [\"smtp:a@x\", \"SMTP:b@x\"] is not true or false"
    );
}

// ---- functions --------------------------------------------------------------

#[test]
fn append() {
    assert_eq!(ev(r#"Append([givenName], ".x")"#), s("John.x"));
    assert_eq!(ev(r#"Append([empty], ".x")"#), Value::Null);
    assert_eq!(ev(r#"Append([givenName], [empty])"#), s("John"));
    assert_eq!(
        ev(r#"Append([proxyAddresses], "!")"#),
        list(&["smtp:a@x!", "SMTP:b@x!"])
    );
    assert_eq!(ev(r#"Append("", "x")"#), Value::Null);
}

#[test]
fn join() {
    assert_eq!(
        ev(r#"Join(".", [givenName], [empty], [sn])"#),
        s("John.Doe")
    );
    assert_eq!(
        ev(r#"Join(",", [proxyAddresses], "c")"#),
        s("smtp:a@x,SMTP:b@x,c")
    );
    assert_eq!(ev(r#"Join(",", [empty], "")"#), Value::Null);
    assert_eq!(ev(r#"Join([empty], "a", "b")"#), s("ab"));
    assert_eq!(ev(r#"Join("–", "ä", 1)"#), s("ä–1"));
}

#[test]
fn left_right_mid() {
    assert_eq!(ev(r#"Left("Émilie", 2)"#), s("Ém"));
    assert_eq!(ev("Left([givenName], 10)"), s("John"));
    assert_eq!(ev("Left([givenName], 0)"), s(""));
    assert_eq!(ev("Left([givenName], -1)"), s("John"));
    assert_eq!(ev("Left([empty], 1)"), Value::Null);
    assert_eq!(ev("Left([proxyAddresses], 4)"), list(&["smtp", "SMTP"]));
    assert_eq!(
        ev(r#"Left("e\u0301x", 1)"#.replace("\\u0301", "\u{301}").as_str()),
        s("e")
    );
    assert_eq!(ev(r#"Right("Doe", 2)"#), s("oe"));
    assert_eq!(ev(r#"Right("ß", 5)"#), s("ß"));
    assert_eq!(ev("Right([empty], 5)"), Value::Null);
    assert_eq!(ev(r#"Mid("abcdef", 2, 3)"#), s("bcd"));
    assert_eq!(ev(r#"Mid("abc", 5, 1)"#), s(""));
    assert_eq!(ev(r#"Mid("abc", 2)"#), s("bc"));
    assert_eq!(ev(r#"Mid("abc", 0, 2)"#), s("ab"));
    assert_eq!(ev(r#"Mid("żółw", 2, 2)"#), s("ół"));
    assert_eq!(ev("Mid([empty], 1, 1)"), Value::Null);
    assert_eq!(
        ev_err("Left([givenName], [n])"),
        "Left: numChars must be a number, found \"abc\""
    );
    assert_eq!(
        ev_err("Left([givenName], [empty])"),
        "Left: numChars is null"
    );
}

#[test]
fn trim_and_strip_spaces() {
    assert_eq!(ev("Trim(\"  a b \t\")"), s("a b"));
    assert_eq!(ev(r#"Trim("   ")"#), s(""));
    assert_eq!(ev("Trim([empty])"), Value::Null);
    assert_eq!(ev("StripSpaces(\"J o\u{a0}h n\")"), s("John"));
    assert_eq!(ev("StripSpaces([empty])"), Value::Null);
    assert_eq!(
        ev(r#"StripSpaces(Split("a b,c d", ","))"#),
        list(&["ab", "cd"])
    );
}

#[test]
fn case_functions_with_unicode_and_turkish() {
    assert_eq!(ev(r#"ToLower("ÀB")"#), s("àb"));
    assert_eq!(ev(r#"ToUpper("straße")"#), s("STRASSE"));
    assert_eq!(ev(r#"ToLower("İSTANBUL")"#), s("istanbul"));
    assert_eq!(
        ev(r#"ToLower("ISPARTA İZMİR", "tr-TR")"#),
        s("ısparta izmir")
    );
    assert_eq!(
        ev(r#"ToUpper("istanbul ığdır", "tr-TR")"#),
        s("İSTANBUL IĞDIR")
    );
    assert_eq!(
        ev(r#"ToUpper("istanbul ığdır", "en-US")"#),
        s("ISTANBUL IĞDIR")
    );
    assert_eq!(ev(r#"ToUpper("ı")"#), s("I"));
    // Culture read from the object at run time.
    assert_eq!(ev(r#"ToUpper("i", [culture])"#), s("İ"));
    assert_eq!(ev("ToLower([empty])"), Value::Null);
    assert_eq!(
        ev("ToUpper([proxyAddresses])"),
        list(&["SMTP:A@X", "SMTP:B@X"])
    );
    assert_eq!(ev(r#"PCase("jOHN o'neil-smith")"#), s("John O'neil-Smith"));
    assert_eq!(ev(r#"PCase("o'neil", " '")"#), s("O'Neil"));
    assert_eq!(ev(r#"PCase("élise ÅSA")"#), s("Élise Åsa"));
    assert_eq!(ev("PCase([empty])"), Value::Null);
}

#[test]
fn normalize_diacritics() {
    assert_eq!(
        ev(r#"NormalizeDiacritics("Zoë Ærøskøbing-Łódź Straße")"#),
        s("Zoe AEroskobing-Lodz Strasse")
    );
    let combining = obj(&[("givenName", &["Jose\u{301} Mu\u{308}ller"])]);
    assert_eq!(
        ev_on("NormalizeDiacritics([givenName])", &combining),
        s("Jose Muller")
    );
    assert_eq!(ev("NormalizeDiacritics([Legal First Name])"), s("John"));
    assert_eq!(ev("NormalizeDiacritics([empty])"), Value::Null);
    assert_eq!(
        ev(r#"NormalizeDiacritics(Split("å,ø", ","))"#),
        list(&["a", "o"])
    );
}

#[test]
fn replace_plain_and_entra_forms() {
    assert_eq!(ev(r#"Replace("a.b.c", ".", "-")"#), s("a-b-c"));
    assert_eq!(
        ev(r#"Replace([mail], "@contoso.com", "@fabrikam.com")"#),
        s("jdoe@fabrikam.com")
    );
    assert_eq!(ev(r#"Replace("a.b", "", "x")"#), s("a.b"));
    assert_eq!(ev(r#"Replace("a.b", ".", [empty])"#), s("ab"));
    assert_eq!(ev(r#"Replace([empty], "a", "b")"#), Value::Null);
    assert_eq!(
        ev(r#"Replace([proxyAddresses], "@x", "@y")"#),
        list(&["smtp:a@y", "SMTP:b@y"])
    );
    // Entra's seven-argument form, with empty arguments.
    assert_eq!(
        ev(r#"Replace([givenName], , "[aeiou]", , "*", , )"#),
        s("J*hn")
    );
    assert_eq!(ev(r#"Replace("a$b", , "\$", , "$1", , )"#), s("a$1b"));
    assert_eq!(
        ev(r#"Replace([mail], , "(?<domain>@.*)$", "domain", "@fabrikam.com", , )"#),
        s("jdoe@fabrikam.com")
    );
    assert_eq!(
        ev(r##"Replace("a1b22", , "[a-z](\d+)", "1", "#", , )"##),
        s("a#b#")
    );
    assert_eq!(
        ev(r#"Replace([givenName], "{n}", , , , , "Hello {n}!")"#),
        s("Hello John!")
    );
    assert_eq!(
        ev(r#"Replace([empty], , "^(?<user>[^@]+)@", "user", , [mail], )"#),
        s("jdoe")
    );
    assert_eq!(
        ev(r#"Replace([sn], , "^(?<user>[^@]+)@", "user", , [mail], )"#),
        s("Doe")
    );
    assert_eq!(
        ev(r#"ReplaceRegex("2024-03-01", "(\d+)-(\d+)-(\d+)", "$3.$2.$1")"#),
        s("01.03.2024")
    );
    assert_eq!(ev(r#"ReplaceRegex([empty], "a", "b")"#), Value::Null);
    // A pattern computed from literals is folded and compiled once; one
    // computed from the object is compiled at run time.
    assert_eq!(ev(r#"ReplaceRegex("aaa", Left("a+b", 2), "x")"#), s("x"));
    assert_eq!(
        ev_err(r#"ReplaceRegex("aaa", [givenName] & "(", "x")"#),
        "ReplaceRegex: invalid regular expression \"John(\": unclosed group"
    );
}

#[test]
fn split_word_item_count() {
    assert_eq!(ev(r#"Split("a,b,,c", ",")"#), list(&["a", "b", "", "c"]));
    assert_eq!(
        ev(r#"Split("a,b,,c", ",")"#).to_strings(),
        vec!["a", "b", "c"]
    );
    assert_eq!(ev(r#"Split([empty], ",")"#), Value::Null);
    assert_eq!(
        ev(r#"Split([proxyAddresses], ":")"#),
        list(&["smtp", "a@x", "SMTP", "b@x"])
    );
    assert_eq!(ev(r#"Split("ab", "")"#), list(&["ab"]));
    assert_eq!(ev(r#"Word("The quick brown fox", 3, " ")"#), s("brown"));
    assert_eq!(
        ev(r#"Word("This,string!has&many separators", 3, ",!&#")"#),
        s("has")
    );
    assert_eq!(ev(r#"Word("a  b", 2, " ")"#), s("b"));
    assert_eq!(ev(r#"Word("a b", 5, " ")"#), Value::Null);
    assert_eq!(ev(r#"Word("a b", 0, " ")"#), Value::Null);
    assert_eq!(ev(r#"Word([empty], 1, " ")"#), Value::Null);
    assert_eq!(ev("Item([proxyAddresses], 2)"), s("SMTP:b@x"));
    assert_eq!(ev("Item([proxyAddresses], 3)"), Value::Null);
    assert_eq!(ev("Item([sn], 1)"), s("Doe"));
    assert_eq!(ev("Count([proxyAddresses])"), Value::Num(2.0));
    assert_eq!(ev("Count([empty])"), Value::Num(0.0));
    assert_eq!(ev("Count([sn])"), Value::Num(1.0));
    assert_eq!(
        ev(r#"RemoveDuplicates(Split("a,b,a", ","))"#),
        list(&["a", "b"])
    );
    assert_eq!(ev("RemoveDuplicates([empty])"), Value::Null);
}

#[test]
fn length_and_searching() {
    assert_eq!(ev(r#"Length("Zoë")"#), Value::Num(3.0));
    assert_eq!(ev("Len([empty])"), Value::Null);
    assert_eq!(
        ev("len([proxyAddresses])"),
        Value::List(vec![Value::Num(8.0), Value::Num(8.0)])
    );
    assert_eq!(ev(r#"Contains([proxyAddresses], "b@")"#), Value::Bool(true));
    assert_eq!(ev(r#"Contains([sn], "d")"#), Value::Bool(false));
    assert_eq!(ev(r#"Contains([empty], "x")"#), Value::Bool(false));
    assert_eq!(ev(r#"Contains([sn], [empty])"#), Value::Bool(false));
    assert_eq!(ev(r#"StartsWith([mail], "jdoe@")"#), Value::Bool(true));
    assert_eq!(ev(r#"EndsWith([mail], ".COM")"#), Value::Bool(false));
    assert_eq!(ev(r#"InStr("hello", "l")"#), Value::Num(3.0));
    assert_eq!(ev(r#"InStr("hello", "l", 4)"#), Value::Num(4.0));
    assert_eq!(ev(r#"InStr("héllo", "l")"#), Value::Num(3.0));
    assert_eq!(ev(r#"InStr("hello", "z")"#), Value::Num(0.0));
    assert_eq!(ev(r#"InStr([empty], "z")"#), Value::Null);
    assert_eq!(
        ev(r#"IsMatch([mail], "@contoso\.com$")"#),
        Value::Bool(true)
    );
    assert_eq!(
        ev(r#"IsMatch([proxyAddresses], "^SMTP:")"#),
        Value::Bool(true)
    );
    assert_eq!(ev(r#"IsMatch([empty], ".*")"#), Value::Bool(false));
}

#[test]
fn switch() {
    let src = r#"Switch([dept], "Unknown", "10", "Sales", "20", "HR")"#;
    assert_eq!(ev(src), s("HR"));
    assert_eq!(ev_on(src, &obj(&[("dept", &["99"])])), s("Unknown"));
    assert_eq!(ev_on(src, &obj(&[])), s("Unknown"));
    assert_eq!(
        ev_on(src, &obj(&[("dept", &["10", "20"])])),
        list(&["Sales", "HR"])
    );
    // Keys compare as exact text; values are evaluated only when chosen.
    assert_eq!(
        ev(r#"Switch("a", "none", "A", CDate([sn]), "a", "lower")"#),
        s("lower")
    );
}

#[test]
fn conditions_and_null_tests() {
    assert_eq!(ev(r#"IIF([active], "on", "off")"#), s("on"));
    assert_eq!(ev(r#"IIF([dept] = 10, "on", "off")"#), s("off"));
    assert_eq!(ev(r#"IIF([empty], "on", "off")"#), s("off"));
    assert_eq!(ev(r#"IIF(true, [sn], CDate([sn]))"#), s("Doe"));
    assert_eq!(
        ev_err(r#"IIF([sn], 1, 2)"#),
        "IIF: \"Doe\" is not true or false"
    );
    assert_eq!(ev("IsNull([empty])"), Value::Bool(true));
    assert_eq!(ev(r#"IsNull("")"#), Value::Bool(true));
    assert_eq!(ev("IsNull([sn])"), Value::Bool(false));
    assert_eq!(ev("IsNullOrEmpty([empty])"), Value::Bool(true));
    assert_eq!(ev("IsPresent([proxyAddresses])"), Value::Bool(true));
    assert_eq!(ev("IsPresent([empty])"), Value::Bool(false));
    assert_eq!(ev(r#"Coalesce([empty], "", [givenName], "x")"#), s("John"));
    assert_eq!(ev("Coalesce([empty], null)"), Value::Null);
    assert_eq!(
        ev("Coalesce([empty], [proxyAddresses])"),
        list(&["smtp:a@x", "SMTP:b@x"])
    );
    assert_eq!(ev("Not(true)"), Value::Bool(false));
    assert_eq!(ev("Not([empty])"), Value::Bool(true));
    assert_eq!(ev(r#"Not([sn] = "Doe") or false"#), Value::Bool(false));
}

#[test]
fn conversions() {
    assert_eq!(ev("CStr(12)"), s("12"));
    assert_eq!(ev("CStr(true)"), s("true"));
    assert_eq!(ev("CStr(CDate(\"2024-03-01\"))"), s("2024-03-01"));
    assert_eq!(ev("CStr([empty])"), Value::Null);
    assert_eq!(ev(r#"CNumber(" 42 ")"#), Value::Num(42.0));
    assert_eq!(ev("CNumber([dept])"), Value::Num(20.0));
    assert_eq!(ev("CNumber([empty])"), Value::Null);
    assert_eq!(
        ev_err("CNumber([givenName])"),
        "CNumber: \"John\" is not a number"
    );
    assert_eq!(ev(r#"CBool("yes")"#), Value::Bool(true));
    assert_eq!(ev("CBool([active])"), Value::Bool(true));
    assert_eq!(ev("CBool(0)"), Value::Bool(false));
    assert_eq!(
        ev_err("CBool([givenName])"),
        "CBool: \"John\" is not a boolean"
    );
    assert_eq!(
        ev(r#"CDate("2024-03-01T08:00:00+02:00")"#),
        date(2024, 3, 1, 6, 0, 0)
    );
    assert_eq!(ev("CDate([whenCreated])"), date(2015, 1, 23, 10, 53, 47));
    assert_eq!(ev("CDate([empty])"), Value::Null);
    assert_eq!(
        ev_err("CDate([givenName])"),
        "CDate: cannot read \"John\" as a date"
    );
}

#[test]
fn format_date_time() {
    let src = r#"FormatDateTime([whenCreated], "yyyyMMddHHmmss.fZ", "yyyy-MM-dd")"#;
    assert_eq!(ev(src), s("2015-01-23"));
    assert_eq!(
        ev(r#"FormatDateTime([whenCreated], , "yyyyMMddHHmmss.fZ", "dd.MM.yyyy HH:mm")"#),
        s("23.01.2015 10:53")
    );
    assert_eq!(
        ev(r#"FormatDateTime("01.02.2024", "dd.MM.yyyy", "yyyy-MM-dd")"#),
        s("2024-02-01")
    );
    assert_eq!(
        ev(r#"FormatDateTime("2024-03-01", "%Y-%m-%d", "%d/%m/%Y")"#),
        s("01/03/2024")
    );
    // A date value needs no parsing with the input format.
    assert_eq!(
        ev(r#"FormatDateTime(DateAdd("d", 1, [hireDate]), "ignored", "MMMM d, yyyy")"#),
        s("January 2, 2020")
    );
    assert_eq!(
        ev(r#"FormatDateTime([empty], "yyyy", "yyyy")"#),
        Value::Null
    );
    let multi = obj(&[("whenCreated", &["20150123105347.0Z", "20200101000000.0Z"])]);
    assert_eq!(ev_on(src, &multi), list(&["2015-01-23", "2020-01-01"]));
    let bad = obj(&[("whenCreated", &["garbage"])]);
    assert_eq!(
        compile(src).eval(&bad, &ctx()).unwrap_err().message,
        "FormatDateTime: \"garbage\" does not match the input format \"yyyyMMddHHmmss.fZ\""
    );
    // Formats from the object are compiled at run time.
    assert_eq!(
        ev_err(r#"FormatDateTime([hireDate], "yyyy-MM-dd", [givenName] & "'")"#),
        "FormatDateTime: unterminated quoted text in date format \"John'\""
    );
}

#[test]
fn date_add_diff_now() {
    assert_eq!(
        ev(r#"DateAdd("d", 30, "2024-03-01")"#),
        date(2024, 3, 31, 0, 0, 0)
    );
    assert_eq!(
        ev(r#"DateAdd("d", 30, "2024-03-01")"#).to_strings(),
        vec!["2024-03-31"]
    );
    assert_eq!(
        ev(r#"DateAdd("m", 1, "2024-01-31")"#),
        date(2024, 2, 29, 0, 0, 0)
    );
    assert_eq!(
        ev(r#"DateAdd("M", "-2", "2024-01-31")"#),
        date(2023, 11, 30, 0, 0, 0)
    );
    assert_eq!(
        ev(r#"DateAdd("yyyy", -1, [hireDate])"#),
        date(2019, 1, 1, 0, 0, 0)
    );
    assert_eq!(
        ev(r#"DateAdd("q", 1, [hireDate])"#),
        date(2020, 4, 1, 0, 0, 0)
    );
    assert_eq!(
        ev(r#"DateAdd("ww", 2, [hireDate])"#),
        date(2020, 1, 15, 0, 0, 0)
    );
    assert_eq!(
        ev(r#"DateAdd("h", 36, [hireDate])"#),
        date(2020, 1, 2, 12, 0, 0)
    );
    assert_eq!(
        ev(r#"DateAdd("n", 90, [hireDate])"#),
        date(2020, 1, 1, 1, 30, 0)
    );
    assert_eq!(
        ev(r#"DateAdd("s", 61, [hireDate])"#).to_strings(),
        vec!["2020-01-01T00:01:01"]
    );
    assert_eq!(ev(r#"DateAdd("d", 1, [empty])"#), Value::Null);
    assert_eq!(
        ev_err(r#"DateAdd("d", 1, [givenName])"#),
        "DateAdd: cannot read \"John\" as a date"
    );
    assert_eq!(
        ev_err(r#"DateAdd("d", [n], [hireDate])"#),
        "DateAdd: the number of intervals must be a number, found \"abc\""
    );
    assert_eq!(
        ev_err(r#"DateAdd([sn], 1, [hireDate])"#).lines().next(),
        Some(
            "DateAdd: unknown interval \"Doe\" (intervals: \"yyyy\" year, \"q\" quarter, \"m\" month, \"ww\" week, \"d\"/\"y\"/\"w\" day, \"h\" hour, \"n\" minute, \"s\" second)"
        )
    );
    assert_eq!(
        ev(r#"DateDiff("d", "2024-03-01", "2024-03-31")"#),
        Value::Num(30.0)
    );
    assert_eq!(
        ev(r#"DateDiff("yyyy", [hireDate], Now())"#),
        Value::Num(4.0)
    );
    assert_eq!(ev(r#"DateDiff("m", Now(), [hireDate])"#), Value::Num(-53.0));
    assert_eq!(ev(r#"DateDiff("d", [empty], Now())"#), Value::Null);
    assert_eq!(ev("Now()"), Value::Date(now().naive_utc()));
    assert_eq!(
        ev(r#"DateAdd("d", -30, Now())"#),
        date(2024, 5, 16, 12, 0, 0)
    );
}

#[test]
fn active_directory_ticks() {
    assert_eq!(ev(r#"NumFromDate("2024-01-01")"#), s("133485408000000000"));
    assert_eq!(ev(r#"NumFromDate([empty])"#), Value::Null);
    assert_eq!(
        ev(r#"DateFromNum("133485408000000000")"#),
        date(2024, 1, 1, 0, 0, 0)
    );
    assert_eq!(ev(r#"DateFromNum("0")"#), Value::Null);
    assert_eq!(ev(r#"DateFromNum("9223372036854775807")"#), Value::Null);
    assert_eq!(
        ev_err("DateFromNum([sn])"),
        "DateFromNum: \"Doe\" is not a whole number of ticks"
    );
    assert_eq!(
        ev_err("NumFromDate([sn])"),
        "NumFromDate: cannot read \"Doe\" as a date"
    );
}

#[test]
fn guid_is_deterministic_per_object_and_call_site() {
    let e = compile("Guid()");
    let a = e.eval(&john(), &ctx()).unwrap();
    let b = e.clone().eval(&Obj::default(), &ctx()).unwrap();
    assert_eq!(a, b);
    let Value::Str(g) = &a else { panic!("{a:?}") };
    assert_eq!(g.len(), 36);
    assert_eq!(g.matches('-').count(), 4);
    assert_eq!(&g[14..15], "5", "a name-based (v5) UUID");
    let other = Context {
        object_key: "hr:1002",
        ..ctx()
    };
    assert_ne!(e.eval(&john(), &other).unwrap(), a);
    // Another expression, or another call in the same one, differs too.
    assert_ne!(compile("Guid() ").eval(&john(), &ctx()).unwrap(), a);
    let Value::Str(two) = ev(r#"Guid() & "|" & Guid()"#) else {
        panic!()
    };
    let (x, y) = two.split_once('|').unwrap();
    assert_ne!(x, y);
}

struct Taken(HashSet<&'static str>);

impl UniqueCheck for Taken {
    fn is_taken(&self, value: &str) -> bool {
        self.0.contains(value)
    }
}

#[test]
fn select_unique_value() {
    let src = r#"SelectUniqueValue(
        ToLower(Left([givenName], 1) & [sn]),
        ToLower([givenName] & "." & [sn]),
        ToLower([givenName] & "." & [sn] & "2"))"#;
    let e = compile(src);
    assert!(e.needs_unique());
    assert_eq!(e.eval(&john(), &ctx()).unwrap(), s("jdoe"));
    let taken = Taken(["jdoe", "john.doe"].into());
    let c = Context {
        unique: Some(&taken),
        ..ctx()
    };
    assert_eq!(e.eval(&john(), &c).unwrap(), s("john.doe2"));
    let all = Taken(["jdoe", "john.doe", "john.doe2"].into());
    let c = Context {
        unique: Some(&all),
        ..ctx()
    };
    assert_eq!(
        e.eval(&john(), &c).unwrap_err().message,
        "SelectUniqueValue: every candidate is already taken: \"jdoe\", \"john.doe\", \"john.doe2\""
    );
    // Null candidates are skipped; nothing at all gives null.
    let c = Context {
        unique: Some(&taken),
        ..ctx()
    };
    assert_eq!(
        compile("SelectUniqueValue([empty], [mail])")
            .eval(&john(), &c)
            .unwrap(),
        s("jdoe@contoso.com")
    );
    assert_eq!(
        compile("SelectUniqueValue([empty])")
            .eval(&john(), &c)
            .unwrap(),
        Value::Null
    );
    // The candidate list a caller can resolve itself, nulls skipped.
    assert_eq!(
        e.unique_candidates(&john(), &ctx(), None),
        Some(Candidates {
            values: vec![
                "jdoe".to_string(),
                "john.doe".to_string(),
                "john.doe2".to_string()
            ],
            error: None,
            more: false,
        })
    );
    assert_eq!(
        compile("ToLower([sn])").unique_candidates(&john(), &ctx(), None),
        None
    );
    assert!(
        compile("SelectUniqueValue([empty])")
            .unique_candidates(&john(), &ctx(), None)
            .is_some_and(|c| c.values.is_empty() && c.error.is_none())
    );
    // A candidate that fails ends the list: the values before it stand.
    let c = compile(r#"SelectUniqueValue(ToLower([sn]), CNumber([givenName]), "x")"#)
        .unique_candidates(&john(), &ctx(), None)
        .expect("a SelectUniqueValue call");
    assert_eq!(c.values, ["doe"]);
    assert!(c.error.is_some_and(|e| e.message.contains("CNumber")));
    // Asked to stop at a value that would do, it evaluates no further (the
    // failing candidate is never reached) and says there is more.
    let e = compile(r#"SelectUniqueValue(ToLower([sn]), CNumber([givenName]), "x")"#);
    let free = |v: &str| v != "taken";
    let c = e
        .unique_candidates(&john(), &ctx(), Some(&free))
        .expect("a SelectUniqueValue call");
    assert_eq!(
        (c.values.as_slice(), c.error, c.more),
        (&["doe".to_string()][..], None, true)
    );
    let taken = |v: &str| v != "doe";
    let c = e
        .unique_candidates(&john(), &ctx(), Some(&taken))
        .expect("a SelectUniqueValue call");
    assert_eq!(
        (c.values.as_slice(), c.more),
        (&["doe".to_string()][..], false)
    );
    assert!(c.error.is_some());
    // The last candidate leaves nothing more, accepted or not.
    let c = compile(r#"SelectUniqueValue(ToLower([sn]))"#)
        .unique_candidates(&john(), &ctx(), Some(&free))
        .expect("a SelectUniqueValue call");
    assert!(!c.more);
}

// ---- compile errors ---------------------------------------------------------

#[test]
fn golden_unknown_function() {
    assert_eq!(
        errs("Lft([givenName], 1)"),
        vec![
            "error: unknown function \"Lft\"\n  Lft([givenName], 1)\n  ^^^\n  help: did you mean \"Left\"?"
        ]
    );
}

#[test]
fn golden_unknown_attribute() {
    assert_eq!(
        errs("ToLower([emial])"),
        vec![
            "error: unknown attribute \"emial\"\n  ToLower([emial])\n          ^^^^^^^\n  help: did you mean \"email\"?"
        ]
    );
}

#[test]
fn golden_wrong_arity() {
    assert_eq!(
        errs("Left([givenName])"),
        vec![
            "error: Left takes 2 arguments, found 1\n  Left([givenName])\n  ^^^^\n  help: usage: Left(source, numChars)"
        ]
    );
}

#[test]
fn golden_unterminated_string() {
    assert_eq!(
        errs(r#"Append([sn], "abc)"#),
        vec![
            "error: unterminated string\n  Append([sn], \"abc)\n               ^\n  help: close the string with `\"`; write `\\\"` for a quote inside it"
        ]
    );
}

#[test]
fn golden_unexpected_token() {
    assert_eq!(
        errs("[givenName] & & [sn]"),
        vec![
            "error: expected a value, found \"&\"\n  [givenName] & & [sn]\n                ^\n  help: `&` needs a value on both sides"
        ]
    );
}

#[test]
fn golden_bad_regex_literal() {
    assert_eq!(
        errs(r#"ReplaceRegex([sn], "[a-", "")"#),
        vec![
            "error: invalid regular expression: unclosed character class\n  ReplaceRegex([sn], \"[a-\", \"\")\n                     ^^^^^\n  help: patterns use Rust regex syntax (no look-around or backreferences)"
        ]
    );
}

#[test]
fn every_independent_error_is_reported_in_order() {
    let src = r#"Join(",", Lft([emial], 1), ToUpper([sn], "x", "y"), Split([mail] ",")) & [nope]"#;
    let e = Expr::compile(src, &Names).unwrap_err();
    let got: Vec<(&str, &str)> = e
        .iter()
        .map(|e| (&src[e.span.clone()], e.message.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("Lft", "unknown function \"Lft\""),
            ("[emial]", "unknown attribute \"emial\""),
            ("ToUpper", "ToUpper takes 1 or 2 arguments, found 3"),
            ("\",\"", "expected \",\" or \")\", found string \",\""),
            ("[nope]", "unknown attribute \"nope\""),
        ]
    );
}

#[test]
fn other_compile_errors() {
    let one = |src: &str| {
        let e = Expr::compile(src, &Names).unwrap_err();
        assert_eq!(e.len(), 1, "{src}: {e:?}");
        (
            src[e[0].span.clone()].to_string(),
            e[0].message.clone(),
            e[0].help.clone(),
        )
    };
    assert_eq!(
        one("Now"),
        (
            "Now".into(),
            "unknown attribute \"Now\"".into(),
            Some("Now is a function: call it as Now()".into())
        )
    );
    assert_eq!(one("Now(1)").1, "Now takes no arguments, found 1");
    assert_eq!(
        one("Join(\",\")").1,
        "Join takes at least 2 arguments, found 1"
    );
    assert_eq!(
        one("Replace([sn], 1, 2, 3)").1,
        "Replace takes 3 or 7 arguments, found 4"
    );
    assert_eq!(
        one(r#"Switch([dept], "x", "a")"#).1,
        "Switch takes at least 4 arguments, found 3"
    );
    assert_eq!(
        one(r#"Switch([dept], "x", "a", "b", "c")"#).1,
        "Switch takes a source, a default and key/value pairs, found 5 arguments (a key without a value)"
    );
    assert_eq!(
        one(r#"Replace([sn], "a", "b", , , , )"#).1,
        "unsupported combination of Replace arguments"
    );
    assert_eq!(
        one(r#"Left([sn], "two")"#),
        (
            "\"two\"".into(),
            "Left expects a number for numChars, found \"two\"".into(),
            Some("usage: Left(source, numChars)".into())
        )
    );
    assert_eq!(
        one(r#"DateAdd("days", 1, [hireDate])"#).1,
        "unknown interval \"days\""
    );
    assert_eq!(
        one(r#"FormatDateTime([hireDate], "yyyy 'oops", "yyyy")"#),
        (
            "\"yyyy 'oops\"".into(),
            "unterminated quoted text in date format \"yyyy 'oops\"".into(),
            Some(
                "usage: FormatDateTime(source, [dateTimeStyles,] inputFormat, outputFormat)".into()
            )
        )
    );
    assert_eq!(
        one(r#"FormatDateTime([hireDate], "%Q", "yyyy")"#).1,
        "invalid strftime date format \"%Q\""
    );
    assert_eq!(
        one(r#"IsMatch([sn], "(")"#).1,
        "invalid regular expression: unclosed group"
    );
    // Literal-only calls are evaluated at compile time, so their errors are too.
    assert_eq!(
        one(r#"CDate("soon")"#),
        (
            "CDate(\"soon\")".into(),
            "CDate: cannot read \"soon\" as a date".into(),
            None
        )
    );
    assert_eq!(one("").1, "empty expression");
    assert_eq!(
        one("[sn] [givenName]").1,
        "unexpected attribute `[givenName]` after a complete expression"
    );
    assert_eq!(
        one("([sn]").1,
        "expected \")\" to close this parenthesis, found end of expression"
    );
    assert_eq!(
        one("[sn] = 1 = 2").2,
        Some("comparisons cannot be chained; combine them with `and`".into())
    );
    assert_eq!(one("[sn] + 1").2, Some("use `&` to join strings".into()));
    assert_eq!(one("[sn").1, "unterminated attribute name");
    assert_eq!(one("[] & 1").1, "empty attribute name");
}

#[test]
fn render_error_handles_multibyte_and_newlines() {
    let src = "Join(\"é\",\n  [emial])";
    let e = Expr::compile(src, &Names).unwrap_err();
    assert_eq!(
        render_error(src, &e[0]),
        "error: unknown attribute \"emial\"\n  Join(\"é\",   [emial])\n              ^^^^^^^\n  help: did you mean \"email\"?"
    );
    // A span past the end still renders a caret.
    let err = ExprError {
        span: 99..120,
        message: "m".into(),
        help: None,
    };
    assert_eq!(render_error("ab", &err), "error: m\n  ab\n    ^");
}

#[test]
fn evaluation_never_panics_on_odd_input() {
    let exprs = [
        "Left([givenName], [dept])",
        "Mid([givenName], 99999999999999999999, -5)",
        r#"DateAdd("yyyy", 99999999, [hireDate])"#,
        r#"DateAdd("s", 1e300, [hireDate])"#,
        r#"FormatDateTime([givenName], "yyyy", "yyyy")"#,
        "Item([proxyAddresses], -1)",
        r#"Word([givenName], 99999999999, "")"#,
        "DateFromNum([dept])",
        r#"DateFromNum("-9223372036854775808")"#,
        r#"InStr([givenName], "", 99)"#,
        r#"Split([givenName], [empty])"#,
        r#"Replace([givenName], , "", , "x", , )"#,
    ];
    let odd = obj(&[
        ("givenName", &["\u{0}\u{301}é\u{10FFFF}"]),
        ("dept", &["-99999999999999999999"]),
        ("hireDate", &["9999-12-31T23:59:59"]),
        ("proxyAddresses", &["", "", ""]),
    ]);
    for src in exprs {
        // Compiling may reject a literal; evaluating must return, not panic.
        if let Ok(e) = Expr::compile(src, &Names) {
            let _ = e.eval(&odd, &ctx());
            let _ = e.eval(&Obj::default(), &ctx());
        }
    }
    assert_eq!(
        compile(r#"DateAdd("yyyy", 99999999, [hireDate])"#)
            .eval(&odd, &ctx())
            .unwrap_err()
            .message,
        "DateAdd: \"9999-12-31T23:59:59\" plus 99999999 is out of range"
    );
}

/// A value as the reference documentation writes results.
fn doc_form(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Str(s) => format!("{s:?}"),
        Value::Num(n) => format_num(*n),
        Value::Bool(b) => b.to_string(),
        Value::Date(d) => format_date(d),
        Value::List(items) => {
            let items: Vec<_> = items.iter().map(doc_form).collect();
            format!("[{}]", items.join(", "))
        }
    }
}

/// Every "- Example: `expression` → `result`" (or "→ error `message`") line
/// of the rule authors' reference holds, so the documentation cannot drift.
#[test]
fn reference_examples_hold() {
    const DOC: &str = include_str!("../../rules/README.md");
    let mut checked = 0;
    let mut failures = Vec::new();
    for line in DOC.lines() {
        let Some(rest) = line.strip_prefix("- Example: `") else {
            continue;
        };
        checked += 1;
        let Some((src, expected)) = rest.split_once("` → ") else {
            failures.push(format!("malformed example line: {line}"));
            continue;
        };
        let got = match Expr::compile(src, &Names) {
            Err(e) => format!("compile error {}", render_error(src, &e[0])),
            Ok(e) => match e.eval(&john(), &ctx()) {
                Ok(v) => format!("`{}`", doc_form(&v)),
                Err(e) => format!("error `{}`", e.message),
            },
        };
        if got != expected {
            failures.push(format!(
                "{src}\n  documented: {expected}\n  actual:     {got}"
            ));
        }
    }
    assert!(checked >= 90, "only {checked} examples found");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Random token soup must never panic the compiler or the evaluator, and
/// every error span must be a valid range of the source, as the rules loader
/// slices the source with it to print a caret.
#[test]
fn random_input_never_panics_and_spans_stay_in_source() {
    const PIECES: &[&str] = &[
        "[givenName]",
        "sn",
        "[missing]",
        "[proxyAddresses]",
        "[Legal First Name]",
        "\"é\"",
        "\"a\\\"b\"",
        "\"[a-\"",
        "\"yyyy\"",
        "\"d\"",
        "1",
        "-2.5",
        "true",
        "null",
        "(",
        ")",
        ",",
        "&",
        "=",
        "<>",
        "<",
        ">=",
        " and ",
        " or ",
        " not ",
        "Left(",
        "Replace(",
        "Switch(",
        "FormatDateTime(",
        "DateAdd(",
        "Join(",
        "IIF(",
        "Word(",
        "SelectUniqueValue(",
        "Guid(",
        "Lft(",
        "[",
        "]",
        "\"",
        "+",
        "ß",
        "\u{301}",
        "\n",
        " ",
    ];
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    let o = john();
    let mut compiled = 0;
    for _ in 0..3000 {
        let len = 1 + next(12);
        let src: String = (0..len).map(|_| PIECES[next(PIECES.len())]).collect();
        match Expr::compile(&src, &Names) {
            Ok(e) => {
                compiled += 1;
                let _ = e.eval(&o, &ctx());
            }
            Err(errors) => {
                assert!(!errors.is_empty(), "{src:?}");
                for e in &errors {
                    assert!(
                        e.span.start <= e.span.end
                            && e.span.end <= src.len()
                            && src.is_char_boundary(e.span.start)
                            && src.is_char_boundary(e.span.end),
                        "{src:?}: {e:?}"
                    );
                    render_error(&src, e);
                }
            }
        }
    }
    assert!(
        compiled > 0,
        "the generator should produce some valid expressions"
    );
}

#[test]
fn per_value_functions_map_over_multi_values() {
    let multi = obj(&[
        ("givenName", &["Ann Lee", "Bob"]),
        ("hireDate", &["2020-01-01", "2021-06-30"]),
        ("dept", &["1", "0"]),
    ]);
    let num = |items: &[f64]| Value::List(items.iter().map(|n| Value::Num(*n)).collect());
    let cases: Vec<(&str, Value)> = vec![
        (r#"Append([givenName], "!")"#, list(&["Ann Lee!", "Bob!"])),
        ("Left([givenName], 2)", list(&["An", "Bo"])),
        ("Right([givenName], 2)", list(&["ee", "ob"])),
        ("Mid([givenName], 2, 2)", list(&["nn", "ob"])),
        ("Trim([givenName])", list(&["Ann Lee", "Bob"])),
        ("ToLower([givenName])", list(&["ann lee", "bob"])),
        ("PCase(ToUpper([givenName]))", list(&["Ann Lee", "Bob"])),
        ("StripSpaces([givenName])", list(&["AnnLee", "Bob"])),
        (
            "NormalizeDiacritics([givenName])",
            list(&["Ann Lee", "Bob"]),
        ),
        (
            r#"Word([givenName], 2, " ")"#,
            Value::List(vec![s("Lee"), Value::Null]),
        ),
        ("Length([givenName])", num(&[7.0, 3.0])),
        (r#"InStr([givenName], "b")"#, num(&[0.0, 3.0])),
        ("CStr([givenName])", list(&["Ann Lee", "Bob"])),
        ("CNumber([dept])", num(&[1.0, 0.0])),
        (
            "CBool([dept])",
            Value::List(vec![Value::Bool(true), Value::Bool(false)]),
        ),
        (
            r#"Replace([givenName], "b", "p")"#,
            list(&["Ann Lee", "Bop"]),
        ),
        (
            r#"ReplaceRegex([givenName], "^(.)", "<$1>")"#,
            list(&["<A>nn Lee", "<B>ob"]),
        ),
        (r#"Switch([givenName], "?", "Bob", "B")"#, list(&["?", "B"])),
        (r#"Split([givenName], " ")"#, list(&["Ann", "Lee", "Bob"])),
        (r#"Join("/", [givenName])"#, s("Ann Lee/Bob")),
        ("Count([givenName])", Value::Num(2.0)),
        ("Item([givenName], 1)", s("Ann Lee")),
        (r#"Contains([givenName], "ob")"#, Value::Bool(true)),
        (r#"IsMatch([givenName], "^B")"#, Value::Bool(true)),
        (
            "Coalesce([missing], [givenName])",
            list(&["Ann Lee", "Bob"]),
        ),
        (
            "CDate([hireDate])",
            Value::List(vec![date(2020, 1, 1, 0, 0, 0), date(2021, 6, 30, 0, 0, 0)]),
        ),
        (
            r#"DateAdd("d", 1, [hireDate])"#,
            Value::List(vec![date(2020, 1, 2, 0, 0, 0), date(2021, 7, 1, 0, 0, 0)]),
        ),
        (
            "NumFromDate([hireDate])",
            list(&["132223104000000000", "132694848000000000"]),
        ),
    ];
    for (src, expected) in cases {
        assert_eq!(ev_on(src, &multi), expected, "{src}");
    }
    let fails = |src: &str| compile(src).eval(&multi, &ctx()).unwrap_err().message;
    assert_eq!(
        fails(r#"DateDiff("d", [hireDate], Now())"#),
        "DateDiff: cannot read [\"2020-01-01\", \"2021-06-30\"] as a date"
    );
    assert_eq!(
        fails("Left([sn], [dept])"),
        "Left: numChars must be a number, found [\"1\", \"0\"]"
    );
    assert_eq!(
        fails(r#"Join([givenName], "a", "b")"#),
        "Join: the separator must be a single value, found [\"Ann Lee\", \"Bob\"]"
    );
}

#[test]
fn empty_string_values_behave_as_null() {
    let blank = obj(&[("givenName", &[""]), ("hireDate", &[""])]);
    let null_results = [
        r#"Append([givenName], "!")"#,
        "Left([givenName], 2)",
        "Mid([givenName], 1, 1)",
        "ToUpper([givenName])",
        "PCase([givenName])",
        "Trim([givenName])",
        "NormalizeDiacritics([givenName])",
        "Length([givenName])",
        r#"Replace([givenName], "a", "b")"#,
        r#"Split([givenName], ",")"#,
        r#"Word([givenName], 1, " ")"#,
        "CDate([hireDate])",
        "CNumber([givenName])",
        r#"FormatDateTime([hireDate], "yyyy-MM-dd", "dd.MM.yyyy")"#,
        r#"DateAdd("d", 1, [hireDate])"#,
        r#"Join(",", [givenName], "")"#,
        r#"Coalesce([givenName], "")"#,
        "SelectUniqueValue([givenName])",
    ];
    for src in null_results {
        assert_eq!(ev_on(src, &blank), Value::Null, "{src}");
    }
    assert_eq!(ev_on("IsNull([givenName])", &blank), Value::Bool(true));
    assert_eq!(ev_on("Count([givenName])", &blank), Value::Num(0.0));
    assert_eq!(ev_on(r#"[givenName] & "x""#, &blank), s("x"));
    assert_eq!(ev_on(r#"[givenName] = """#, &blank), Value::Bool(true));
    assert_eq!(
        ev_on(r#"Switch([givenName], "none", "", "empty")"#, &blank),
        s("none")
    );
}
