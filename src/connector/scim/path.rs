//! SCIM attribute paths: the flat names export flows write to, and how each
//! maps to and from a resource's JSON, to PATCH operations and to filters.
//!
//! Kept apart from the HTTP side so the mapping is pure and tested on its
//! own; the forms are listed in the module doc of [`super`].

use serde_json::{Map, Value, json};

pub const CORE_USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const CORE_GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// One supported attribute path, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Path {
    /// A single-valued string: `userName`, `name.givenName`, or, with an
    /// extension URN, `urn:…:User:department`.
    Text {
        ext: Option<String>,
        attr: String,
        sub: Option<String>,
    },
    /// `active`: "true"/"false" in idsync, a JSON boolean in SCIM.
    Bool { attr: String },
    /// An extension's `manager`: the manager's id, `{"value": id}` in SCIM.
    Manager { ext: String },
    /// A Group's `members`: ids, `[{"value": id}, …]` in SCIM.
    Members,
    /// `emails[type eq "work"].value`: the values of one type of a
    /// multi-valued complex attribute, several allowed.
    Typed { attr: String, kind: String },
}

impl Path {
    /// Parses `text`; `extensions` are the agent's extension URNs, so an
    /// extension whose URN holds more colons than usual still splits right.
    pub fn parse(text: &str, extensions: &[String]) -> Result<Path, String> {
        let bad = |why: &str| format!("unsupported SCIM attribute path {text:?}: {why}");
        if text.starts_with("urn:") {
            let (urn, rest) = split_urn(text, extensions).ok_or_else(|| {
                bad("an extension attribute is the schema URN followed by \":attr\"")
            })?;
            if urn.eq_ignore_ascii_case(CORE_USER) || urn.eq_ignore_ascii_case(CORE_GROUP) {
                return Path::parse(rest, &[]);
            }
            let (attr, sub) = split_sub(rest).map_err(&bad)?;
            if attr.eq_ignore_ascii_case("manager") && sub.is_none_or(|s| s == "value") {
                return Ok(Path::Manager {
                    ext: urn.to_string(),
                });
            }
            return Ok(Path::Text {
                ext: Some(urn.to_string()),
                attr: attr.to_string(),
                sub: sub.map(str::to_string),
            });
        }
        if let Some(open) = text.find('[') {
            let attr = &text[..open];
            check_name(attr).map_err(&bad)?;
            let close = text
                .find(']')
                .ok_or_else(|| bad("the \"[\" is not closed"))?;
            if &text[close + 1..] != ".value" {
                return Err(bad("only the \".value\" of a selected type is supported"));
            }
            let kind = parse_type_filter(&text[open + 1..close]).ok_or_else(|| {
                bad("the selection must read [type eq \"...\"], e.g. emails[type eq \"work\"].value")
            })?;
            return Ok(Path::Typed {
                attr: attr.to_string(),
                kind: kind.to_string(),
            });
        }
        let (attr, sub) = split_sub(text).map_err(&bad)?;
        match (attr, sub) {
            (a, None) if a.eq_ignore_ascii_case("members") => Ok(Path::Members),
            (a, None) if a.eq_ignore_ascii_case("active") => Ok(Path::Bool {
                attr: a.to_string(),
            }),
            (a, s) => Ok(Path::Text {
                ext: None,
                attr: a.to_string(),
                sub: s.map(str::to_string),
            }),
        }
    }

    /// The extension schema this path writes into, if any.
    pub fn extension(&self) -> Option<&str> {
        match self {
            Path::Text { ext, .. } => ext.as_deref(),
            Path::Manager { ext } => Some(ext),
            _ => None,
        }
    }

    /// The path as a PATCH `path` names the whole attribute.
    fn patch_path(&self) -> String {
        match self {
            Path::Text { ext, attr, sub } => {
                let mut p = String::new();
                if let Some(e) = ext {
                    p.push_str(e);
                    p.push(':');
                }
                p.push_str(attr);
                if let Some(s) = sub {
                    p.push('.');
                    p.push_str(s);
                }
                p
            }
            Path::Bool { attr } => attr.clone(),
            Path::Manager { ext } => format!("{ext}:manager"),
            Path::Members => "members".to_string(),
            Path::Typed { attr, kind } => format!("{attr}[type eq {}]", quote(kind)),
        }
    }

    /// The name to ask for in an `attributes=` query parameter.
    pub fn requested(&self) -> String {
        match self {
            Path::Typed { attr, .. } => attr.clone(),
            p => p.patch_path(),
        }
    }

    /// Writes `values` into a resource being created.
    pub fn write(&self, root: &mut Map<String, Value>, values: &[String]) -> Result<(), String> {
        if values.is_empty() {
            return Ok(());
        }
        match self {
            Path::Text { ext, attr, sub } => {
                let v = Value::String(single(self, values)?.to_string());
                let obj = match ext {
                    Some(e) => object_at(root, e, self)?,
                    None => root,
                };
                match sub {
                    Some(s) => {
                        object_at(obj, attr, self)?.insert(s.clone(), v);
                    }
                    None => {
                        obj.insert(attr.clone(), v);
                    }
                }
            }
            Path::Bool { attr } => {
                root.insert(attr.clone(), Value::Bool(boolean(self, values)?));
            }
            Path::Manager { ext } => {
                let id = single(self, values)?;
                object_at(root, ext, self)?.insert("manager".into(), json!({ "value": id }));
            }
            Path::Members => {
                let list = array_at(root, "members", self)?;
                list.extend(values.iter().map(|id| json!({ "value": id })));
            }
            Path::Typed { attr, kind } => {
                let list = array_at(root, attr, self)?;
                list.extend(values.iter().map(|v| json!({ "type": kind, "value": v })));
            }
        }
        Ok(())
    }

    /// The values `resource` holds at this path, as idsync strings.
    pub fn read(&self, resource: &Map<String, Value>) -> Vec<String> {
        let mut out = Vec::new();
        match self {
            Path::Text { ext, attr, sub } => {
                let obj = match ext {
                    Some(e) => get_ci(resource, e).and_then(Value::as_object),
                    None => Some(resource),
                };
                let mut v = obj.and_then(|o| get_ci(o, attr));
                if let Some(s) = sub {
                    v = v.and_then(Value::as_object).and_then(|o| get_ci(o, s));
                }
                if let Some(v) = v {
                    scalars(v, &mut out);
                }
            }
            Path::Bool { attr } => {
                if let Some(v) = get_ci(resource, attr) {
                    scalars(v, &mut out);
                }
            }
            Path::Manager { ext } => {
                let m = get_ci(resource, ext)
                    .and_then(Value::as_object)
                    .and_then(|o| get_ci(o, "manager"));
                if let Some(v) = m {
                    scalars(v, &mut out);
                }
            }
            Path::Members => {
                if let Some(v) = get_ci(resource, "members") {
                    scalars(v, &mut out);
                }
            }
            Path::Typed { attr, kind } => {
                let items = get_ci(resource, attr).and_then(Value::as_array);
                for item in items.into_iter().flatten().filter_map(Value::as_object) {
                    let t = get_ci(item, "type").and_then(Value::as_str);
                    if t.is_some_and(|t| t.eq_ignore_ascii_case(kind))
                        && let Some(v) = get_ci(item, "value")
                    {
                        scalars(v, &mut out);
                    }
                }
            }
        }
        out
    }

    /// The PATCH operations that leave exactly `values` at this path.
    ///
    /// A typed selection is removed, then its new values added: a `replace`
    /// whose filter matches nothing is a 400 `noTarget` (RFC 7644 §3.5.2.3,
    /// and scim2-server 0.8.3 does so), while a `remove` that matches nothing
    /// is accepted, so this pair works whether the type is there or not.
    pub fn replace(&self, values: &[String], ops: &mut Vec<Value>) -> Result<(), String> {
        let path = self.patch_path();
        match self {
            Path::Typed { attr, kind } => {
                ops.push(json!({ "op": "remove", "path": path }));
                if !values.is_empty() {
                    let items: Vec<Value> = values
                        .iter()
                        .map(|v| json!({ "type": kind, "value": v }))
                        .collect();
                    ops.push(json!({ "op": "add", "path": attr, "value": items }));
                }
            }
            _ if values.is_empty() => ops.push(json!({ "op": "remove", "path": path })),
            Path::Members => {
                ops.push(json!({ "op": "replace", "path": path, "value": refs(values) }))
            }
            Path::Text { .. } => {
                let v = single(self, values)?;
                ops.push(json!({ "op": "replace", "path": path, "value": v }));
            }
            Path::Bool { .. } => {
                let v = boolean(self, values)?;
                ops.push(json!({ "op": "replace", "path": path, "value": v }));
            }
            Path::Manager { .. } => {
                let id = single(self, values)?;
                ops.push(json!({ "op": "replace", "path": path, "value": { "value": id } }));
            }
        }
        Ok(())
    }

    /// The PATCH operation adding `values` to a multi-valued attribute.
    pub fn add(&self, values: &[String], ops: &mut Vec<Value>) -> Result<(), String> {
        if values.is_empty() {
            return Ok(());
        }
        match self {
            Path::Members => {
                ops.push(json!({ "op": "add", "path": "members", "value": refs(values) }))
            }
            Path::Typed { attr, kind } => {
                let items: Vec<Value> = values
                    .iter()
                    .map(|v| json!({ "type": kind, "value": v }))
                    .collect();
                ops.push(json!({ "op": "add", "path": attr, "value": items }));
            }
            _ => return Err(single_valued(self, "add values to")),
        }
        Ok(())
    }

    /// The PATCH operations removing `values` from a multi-valued attribute,
    /// one `remove` with a value filter per value.
    pub fn remove(&self, values: &[String], ops: &mut Vec<Value>) -> Result<(), String> {
        match self {
            Path::Members => {
                for id in values {
                    let path = format!("members[value eq {}]", quote(id));
                    ops.push(json!({ "op": "remove", "path": path }));
                }
            }
            Path::Typed { attr, kind } => {
                for v in values {
                    let path = format!("{attr}[type eq {} and value eq {}]", quote(kind), quote(v));
                    ops.push(json!({ "op": "remove", "path": path }));
                }
            }
            _ if values.is_empty() => {}
            _ => return Err(single_valued(self, "remove values from")),
        }
        Ok(())
    }

    /// The filter finding resources whose value at this path is `value`.
    pub fn filter(&self, value: &str) -> Result<String, String> {
        Ok(match self {
            Path::Text { .. } => format!("{} eq {}", self.patch_path(), quote(value)),
            Path::Bool { attr } => {
                let b = boolean(self, &[value.to_string()])?;
                format!("{attr} eq {b}")
            }
            Path::Manager { ext } => format!("{ext}:manager.value eq {}", quote(value)),
            Path::Members => format!("members[value eq {}]", quote(value)),
            Path::Typed { attr, kind } => {
                format!(
                    "{attr}[type eq {} and value eq {}]",
                    quote(kind),
                    quote(value)
                )
            }
        })
    }
}

/// A SCIM filter string literal: filter values follow JSON's string rules
/// (RFC 7644 §3.4.2.2), so JSON's escaping covers `"`, `\` and control
/// characters alike.
pub fn quote(value: &str) -> String {
    Value::String(value.to_string()).to_string()
}

fn refs(ids: &[String]) -> Vec<Value> {
    ids.iter().map(|id| json!({ "value": id })).collect()
}

fn single<'a>(path: &Path, values: &'a [String]) -> Result<&'a str, String> {
    match values {
        [v] => Ok(v),
        _ => Err(format!(
            "{} is single-valued but was given {} values",
            path.patch_path(),
            values.len()
        )),
    }
}

fn single_valued(path: &Path, verb: &str) -> String {
    format!("cannot {verb} the single-valued {}", path.patch_path())
}

fn boolean(path: &Path, values: &[String]) -> Result<bool, String> {
    let v = single(path, values)?;
    if v.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if v.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err(format!(
            "{} takes \"true\" or \"false\", not {v:?}",
            path.patch_path()
        ))
    }
}

/// Scalars become strings; a `{"value": …}` reference becomes its value;
/// an array contributes each element.
fn scalars(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) if !s.is_empty() => out.push(s.clone()),
        Value::Bool(b) => out.push(b.to_string()),
        Value::Number(n) => out.push(n.to_string()),
        Value::Object(o) => {
            if let Some(v) = get_ci(o, "value")
                && !v.is_object()
            {
                scalars(v, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|v| scalars(v, out)),
        _ => {}
    }
}

/// SCIM attribute names are case-insensitive; servers answer in the
/// schema's case, so the exact lookup nearly always hits.
pub fn get_ci<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).or_else(|| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

fn object_at<'a>(
    obj: &'a mut Map<String, Value>,
    key: &str,
    path: &Path,
) -> Result<&'a mut Map<String, Value>, String> {
    obj.entry(key)
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
        .ok_or_else(|| format!("{} conflicts with another attribute", path.patch_path()))
}

fn array_at<'a>(
    obj: &'a mut Map<String, Value>,
    key: &str,
    path: &Path,
) -> Result<&'a mut Vec<Value>, String> {
    obj.entry(key)
        .or_insert_with(|| Value::Array(Vec::new()))
        .as_array_mut()
        .ok_or_else(|| format!("{} conflicts with another attribute", path.patch_path()))
}

/// Splits `urn:…:attr[.sub]` after the longest known extension URN, or
/// else before the last colon.
fn split_urn<'a>(text: &'a str, extensions: &[String]) -> Option<(&'a str, &'a str)> {
    let known = extensions
        .iter()
        .filter(|e| {
            text.len() > e.len() + 1
                && text[..e.len()].eq_ignore_ascii_case(e)
                && text.as_bytes()[e.len()] == b':'
        })
        .max_by_key(|e| e.len());
    let (urn, rest) = match known {
        Some(e) => (&text[..e.len()], &text[e.len() + 1..]),
        None => text.rsplit_once(':')?,
    };
    (!rest.is_empty() && urn.len() > "urn:".len()).then_some((urn, rest))
}

fn split_sub(text: &str) -> Result<(&str, Option<&str>), &'static str> {
    let (attr, sub) = match text.split_once('.') {
        Some((a, s)) => (a, Some(s)),
        None => (text, None),
    };
    check_name(attr)?;
    if let Some(s) = sub {
        check_name(s)?;
    }
    Ok((attr, sub))
}

/// RFC 7643 §2.1: `ATTRNAME = ALPHA *(nameChar)`, `nameChar = "-" / "_" / DIGIT / ALPHA`;
/// a `$ref` sub-attribute is the one exception.
fn check_name(name: &str) -> Result<(), &'static str> {
    let mut chars = name.chars();
    let ok = name == "$ref"
        || (chars.next().is_some_and(|c| c.is_ascii_alphabetic())
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    if ok {
        Ok(())
    } else {
        Err("an attribute name is a letter followed by letters, digits, '-' or '_'")
    }
}

/// `type eq "work"` → `work`.
fn parse_type_filter(inner: &str) -> Option<&str> {
    let mut words = inner.trim().splitn(3, char::is_whitespace);
    let (attr, op, rest) = (words.next()?, words.next()?, words.next()?.trim());
    let kind = rest.strip_prefix('"')?.strip_suffix('"')?;
    let ok = attr.eq_ignore_ascii_case("type")
        && op.eq_ignore_ascii_case("eq")
        && !kind.is_empty()
        && !kind.contains(['"', '\\']);
    ok.then_some(kind)
}
