//! The SCIM 2.0 target (RFC 7643 resources, RFC 7644 protocol): creates,
//! patches and deletes Users or Groups of one service, finds them by filter
//! and reads them all back for a confirming import.
//!
//! # Attribute paths
//! Export flows name SCIM attributes by flat paths; each maps to the
//! resource's JSON as follows (values are idsync strings):
//!
//! | path | JSON |
//! | --- | --- |
//! | `userName`, `displayName`, `externalId`, `title`, `userType`, … | `"userName": "jdoe"` (one value) |
//! | `active` | `"active": true` (from `"true"`/`"false"`) |
//! | `name.givenName`, `name.familyName`, `name.formatted` | `"name": {"givenName": "J"}` |
//! | `emails[type eq "work"].value`, `phoneNumbers[type eq "work"].value` | `"emails": [{"type": "work", "value": "j@x"}, …]`, several values allowed |
//! | `<extension URN>:department`, `…:employeeNumber` | `"<URN>": {"department": "IT"}` |
//! | `<extension URN>:manager` | `"<URN>": {"manager": {"value": "<manager's id>"}}` |
//! | `members` (Groups) | `"members": [{"value": "<id>"}, …]` |
//!
//! An extension path splits after the longest of the agent's `extensions`
//! that prefixes it, else before its last colon; a created resource's
//! `schemas` lists the core schema and each extension it carries. The core
//! URN followed by `:attr` is the same as `attr`. [`check_attribute`] tells
//! whether a path is one of these forms.
//!
//! # Updates
//! An update is one PATCH holding only what changed: a changed attribute is
//! a `replace` (or a `remove` when it is cleared); a typed selection is a
//! `remove` of `emails[type eq "work"]` then an `add` of the new values to
//! `emails` (a `replace` through a filter that matches nothing is a 400
//! `noTarget`); group members come and go with `add` of `members` and one
//! `remove` of `members[value eq "<id>"]` per member. A rename replaces
//! `userName` (Groups: `displayName`). scim2-server 0.8.3 accepts each of
//! these forms, also when a `remove` matches nothing.
//!
//! # Errors
//! 429, 5xx and dropped connections are retried within the call (the `http`
//! submodule says how). A 401 is transient: the token, not the object, is
//! wrong; so is a 403 at connect, while a 403 on one object is that
//! object's refusal. A 409 on create is [`ExportError::Exists`], a 404 on
//! update or delete [`ExportError::NotFound`]; any other refusal is
//! [`ExportError::Rejected`] with the SCIM `scimType` and `detail`. A create
//! retried after a lost answer may meet its own first attempt and answer
//! `Exists`; the caller can then join by `find` as for any existing name.

mod http;
mod path;

use crate::connector::target::{
    Applied, Attrs, Change, ExportError, ExportOp, RefBy, RemoteObject, ScimConfig, ScimResource,
    Target, secret,
};
use http::{Answer, Class, Http, Method, classify};
use path::{CORE_GROUP, CORE_USER, PATCH_OP, Path};
use serde_json::{Map, Value, json};

/// Resources per page of a confirming import.
const PAGE: usize = 500;

/// Whether `attr` is an attribute path this connector can map, and why not;
/// for the rule compiler to report at load time.
pub fn check_attribute(attr: &str, extensions: &[String]) -> Result<(), String> {
    Path::parse(attr, extensions).map(|_| ())
}

pub struct ScimTarget {
    cfg: ScimConfig,
    http: Http,
    /// `<url>/Users` or `<url>/Groups`.
    collection: String,
    /// `cfg.attributes`, parsed at connect.
    read_paths: Vec<(String, Path)>,
    /// The `attributes=` query parameter of reads: only what is mapped.
    requested: String,
    page: usize,
}

impl ScimTarget {
    pub fn new(cfg: ScimConfig) -> ScimTarget {
        let kind = match cfg.resource {
            ScimResource::Users => "Users",
            ScimResource::Groups => "Groups",
        };
        let collection = format!("{}/{kind}", cfg.url.trim_end_matches('/'));
        ScimTarget {
            http: Http::new(cfg.timeout_secs, cfg.attempts, cfg.backoff_ms),
            cfg,
            collection,
            read_paths: Vec::new(),
            requested: String::new(),
            page: PAGE,
        }
    }

    /// Resources per page of [`Target::read_all`] (500 unless set); tests
    /// lower it to cross pages with fewer resources.
    pub fn with_page_size(mut self, page: usize) -> ScimTarget {
        self.page = page.max(1);
        self
    }

    fn naming(&self) -> &'static str {
        match self.cfg.resource {
            ScimResource::Users => "userName",
            ScimResource::Groups => "displayName",
        }
    }

    fn core(&self) -> &'static str {
        match self.cfg.resource {
            ScimResource::Users => CORE_USER,
            ScimResource::Groups => CORE_GROUP,
        }
    }

    fn item_url(&self, id: &str) -> String {
        format!("{}/{}", self.collection, http::segment(id))
    }

    fn parse(&self, attr: &str) -> Result<Path, ExportError> {
        Path::parse(attr, &self.cfg.extensions).map_err(ExportError::Rejected)
    }

    /// The JSON body creating `name` with `attrs`.
    fn create_body(&self, name: &str, attrs: &Attrs) -> Result<Vec<u8>, ExportError> {
        let mut root = Map::new();
        let mut schemas = vec![Value::from(self.core())];
        for (attr, values) in attrs {
            if values.is_empty() {
                continue;
            }
            let path = self.parse(attr)?;
            if let Some(ext) = path.extension()
                && !schemas.iter().any(|s| s.as_str() == Some(ext))
            {
                schemas.push(Value::from(ext));
            }
            path.write(&mut root, values)
                .map_err(ExportError::Rejected)?;
        }
        if path::get_ci(&root, self.naming()).is_none() {
            root.insert(self.naming().into(), Value::from(name));
        }
        root.insert("schemas".into(), Value::Array(schemas));
        serde_json::to_vec(&root).map_err(|e| ExportError::Rejected(e.to_string()))
    }

    /// The PATCH operations for a rename and `changes`; empty when nothing
    /// is to be sent.
    fn patch_ops(
        &self,
        rename: Option<&str>,
        changes: &[Change],
    ) -> Result<Vec<Value>, ExportError> {
        let mut ops = Vec::new();
        if let Some(new) = rename {
            ops.push(json!({ "op": "replace", "path": self.naming(), "value": new }));
        }
        for change in changes {
            let path = self.parse(change.attr())?;
            match change {
                Change::Replace(_, v) => path.replace(v, &mut ops),
                Change::Add(_, v) => path.add(v, &mut ops),
                Change::Remove(_, v) => path.remove(v, &mut ops),
            }
            .map_err(ExportError::Rejected)?;
        }
        Ok(ops)
    }

    /// A resource as the engine sees it: id, name, the configured attributes.
    fn remote(&self, resource: &Value) -> Result<RemoteObject, ExportError> {
        let obj = resource.as_object().ok_or_else(|| {
            ExportError::Rejected(format!(
                "SCIM {}: a resource that is not a JSON object",
                self.collection
            ))
        })?;
        let id = match path::get_ci(obj, "id") {
            Some(Value::String(id)) if !id.is_empty() => id.clone(),
            _ => {
                return Err(ExportError::Rejected(format!(
                    "SCIM {}: a resource without an id",
                    self.collection
                )));
            }
        };
        let name = path::get_ci(obj, self.naming())
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let mut attrs = Attrs::new();
        for (attr, path) in &self.read_paths {
            let values = path.read(obj);
            if !values.is_empty() {
                attrs.insert(attr.clone(), values);
            }
        }
        Ok(RemoteObject { id, name, attrs })
    }

    fn list(&self, query: &[(&str, &str)]) -> Result<ListResponse, ExportError> {
        let answer = self.http.call(Method::Get, &self.collection, query, None)?;
        if classify(answer.status) != Class::Success {
            return Err(self.refused(Method::Get, &self.collection, &answer));
        }
        serde_json::from_slice(&answer.body).map_err(|e| {
            ExportError::Rejected(format!(
                "SCIM GET {}: not a SCIM list response: {e}",
                self.collection
            ))
        })
    }

    fn refused(&self, method: Method, url: &str, answer: &Answer) -> ExportError {
        let msg = format!("SCIM {} {url}: {}", method.name(), answer.describe());
        match classify(answer.status) {
            Class::Unauthorized | Class::Retry => ExportError::Transient(msg),
            _ => ExportError::Rejected(msg),
        }
    }
}

#[derive(serde::Deserialize)]
struct ListResponse {
    #[serde(rename = "totalResults")]
    total: Option<u64>,
    #[serde(rename = "Resources", default)]
    resources: Vec<Value>,
}

impl Target for ScimTarget {
    fn kind(&self) -> &'static str {
        "scim"
    }

    fn reference_by(&self) -> RefBy {
        RefBy::Id
    }

    fn connect(&mut self) -> Result<(), ExportError> {
        let mut read_paths = Vec::with_capacity(self.cfg.attributes.len());
        let mut requested = vec![self.naming().to_string()];
        for attr in &self.cfg.attributes {
            let path = self.parse(attr)?;
            let r = path.requested();
            if !requested.contains(&r) {
                requested.push(r);
            }
            read_paths.push((attr.clone(), path));
        }
        self.read_paths = read_paths;
        self.requested = requested.join(",");

        let token = secret(&self.cfg.token_env)?;
        self.http.set_token(&token);
        let url = &self.collection;
        let answer = self.http.call(Method::Get, url, &[("count", "1")], None)?;
        match answer.status {
            200..=299 => Ok(()),
            401 | 403 => Err(ExportError::Transient(format!(
                "SCIM GET {url}: the service refused the token in {}: {}",
                self.cfg.token_env,
                answer.describe()
            ))),
            404 => Err(ExportError::Transient(format!(
                "SCIM GET {url}: no SCIM service there: {}",
                answer.describe()
            ))),
            _ => Err(ExportError::Transient(format!(
                "SCIM GET {url}: {}",
                answer.describe()
            ))),
        }
    }

    fn find(&mut self, attr: &str, value: &str) -> Result<Option<RemoteObject>, ExportError> {
        let filter = self
            .parse(attr)?
            .filter(value)
            .map_err(ExportError::Rejected)?;
        let list = self.list(&[
            ("filter", &filter),
            ("count", "2"),
            ("attributes", &self.requested),
        ])?;
        let total = list.total.unwrap_or(0).max(list.resources.len() as u64);
        match (total, list.resources.as_slice()) {
            (0, _) | (_, []) => Ok(None),
            (1, [one]) => self.remote(one).map(Some),
            (n, _) => Err(ExportError::Rejected(format!(
                "SCIM {}: {n} resources match {filter}",
                self.collection
            ))),
        }
    }

    fn apply(&mut self, op: &ExportOp) -> Result<Applied, ExportError> {
        match op {
            ExportOp::Create { name, attrs } => {
                let body = self.create_body(name, attrs)?;
                let answer = self
                    .http
                    .call(Method::Post, &self.collection, &[], Some(&body))?;
                match classify(answer.status) {
                    Class::Success => created(&self.collection, self.naming(), name, &answer),
                    Class::Conflict => Err(ExportError::Exists(name.clone())),
                    _ => Err(self.refused(Method::Post, &self.collection, &answer)),
                }
            }
            ExportOp::Update {
                id,
                name,
                rename,
                changes,
            } => {
                let after = Applied {
                    id: id.clone(),
                    name: rename.as_ref().unwrap_or(name).clone(),
                };
                let ops = self.patch_ops(rename.as_deref(), changes)?;
                if ops.is_empty() {
                    return Ok(after);
                }
                let body = json!({ "schemas": [PATCH_OP], "Operations": ops });
                let body =
                    serde_json::to_vec(&body).map_err(|e| ExportError::Rejected(e.to_string()))?;
                let url = self.item_url(id);
                let answer = self.http.call(Method::Patch, &url, &[], Some(&body))?;
                match classify(answer.status) {
                    Class::Success => Ok(after),
                    Class::NotFound => Err(ExportError::NotFound(format!("{name} (id {id})"))),
                    _ => Err(self.refused(Method::Patch, &url, &answer)),
                }
            }
            ExportOp::Delete { id, name } => {
                let url = self.item_url(id);
                let answer = self.http.call(Method::Delete, &url, &[], None)?;
                match classify(answer.status) {
                    Class::Success => Ok(Applied {
                        id: id.clone(),
                        name: name.clone(),
                    }),
                    Class::NotFound => Err(ExportError::NotFound(format!("{name} (id {id})"))),
                    _ => Err(self.refused(Method::Delete, &url, &answer)),
                }
            }
        }
    }

    fn read_all(&mut self, each: &mut dyn FnMut(RemoteObject)) -> Result<(), ExportError> {
        let count = self.page.to_string();
        let mut start: u64 = 1;
        loop {
            let index = start.to_string();
            let list = self.list(&[
                ("startIndex", &index),
                ("count", &count),
                ("attributes", &self.requested),
            ])?;
            // An empty page ends the walk even if totalResults says more:
            // a server that miscounts must not keep us asking forever.
            if list.resources.is_empty() {
                return Ok(());
            }
            for resource in &list.resources {
                each(self.remote(resource)?);
            }
            start += list.resources.len() as u64;
            // Without the (required) totalResults, a short page is the last.
            let done = match list.total {
                Some(total) => start > total,
                None => list.resources.len() < self.page,
            };
            if done {
                return Ok(());
            }
        }
    }
}

/// The id and name a 201 answers with.
fn created(url: &str, naming: &str, name: &str, answer: &Answer) -> Result<Applied, ExportError> {
    let bad = |why: &str| {
        ExportError::Rejected(format!(
            "SCIM POST {url}: {} answered {why}; {name} may have been created",
            answer.status
        ))
    };
    let body: Map<String, Value> =
        serde_json::from_slice(&answer.body).map_err(|_| bad("without a JSON resource"))?;
    let id = match path::get_ci(&body, "id") {
        Some(Value::String(id)) if !id.is_empty() => id.clone(),
        _ => return Err(bad("without an id")),
    };
    let name = path::get_ci(&body, naming)
        .and_then(Value::as_str)
        .unwrap_or(name)
        .to_string();
    Ok(Applied { id, name })
}

#[cfg(test)]
mod tests;
