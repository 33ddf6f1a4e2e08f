//! HTTP layer: authentication, routing, and the generic verbs (get, list, watch, create, update,
//! patch, delete) applied to any [`Kind`].

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use serde_json::{json, Value};
use tokio::sync::broadcast::error::RecvError;

use crate::kinds::{self, Kind, NAMESPACES};
use crate::patch;
use crate::selector::{FieldSelector, LabelSelector};
use crate::status::ApiError;
use crate::store::{meta_str, rv_of, Change, Store, StoreError};
use crate::util;
use crate::validate;

pub type Body = BoxBody<Bytes, Infallible>;

/// Everything a request handler needs.
pub struct App {
    pub store: Store,
    pub token: String,
    /// `host:port` the server is reachable at, for `/api`'s serverAddressByClientCIDRs.
    pub address: String,
}

fn json_response(code: u16, v: &Value) -> Response<Body> {
    let bytes = serde_json::to_vec(v).unwrap_or_default();
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(bytes)).boxed())
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()).boxed()))
}

fn error_response(e: &ApiError) -> Response<Body> {
    json_response(e.code, &e.to_status())
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_query(q: Option<&str>) -> HashMap<String, String> {
    q.unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// A parsed resource URL.
struct Target {
    kind: &'static Kind,
    ns: Option<String>,
    name: Option<String>,
    sub: Option<String>,
}

enum Route {
    Json(Value),
    Text(&'static str),
    Resource(Target),
}

fn route(app: &App, path: &str) -> Result<Route, ApiError> {
    let segs: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let (group, version, rest): (&str, &str, &[&str]) = match segs.as_slice() {
        ["version"] => {
            return Ok(Route::Json(json!({
                "major": "1", "minor": "20", "gitVersion": "v1.20.2-testnet-sandbox",
                "gitCommit": "", "gitTreeState": "clean", "buildDate": "", "goVersion": "",
                "compiler": "rust", "platform": "linux/amd64"
            })))
        }
        ["healthz"] | ["readyz"] | ["livez"] => return Ok(Route::Text("ok")),
        ["api"] => {
            return Ok(Route::Json(json!({
                "kind": "APIVersions", "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": app.address}]
            })))
        }
        ["apis"] => return Ok(Route::Json(kinds::group_list())),
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return Err(ApiError::not_found_path()),
    };
    if rest.is_empty() {
        return kinds::resource_list(group, version)
            .map(Route::Json)
            .ok_or_else(ApiError::not_found_path);
    }
    let own = |s: &&str| s.to_string();
    let namespaced_path = rest[0] == "namespaces"
        && rest.len() >= 3
        && !(rest.len() == 3 && matches!(rest[2], "status" | "finalize"));
    let (ns, plural, name, sub) = if namespaced_path {
        (
            Some(rest[1].to_string()),
            rest[2],
            rest.get(3).map(own),
            rest.get(4).map(own),
        )
    } else {
        (None, rest[0], rest.get(1).map(own), rest.get(2).map(own))
    };
    if rest.len() > if namespaced_path { 5 } else { 3 } {
        return Err(ApiError::not_found_path());
    }
    let kind = kinds::find(group, version, plural).ok_or_else(ApiError::not_found_path)?;
    if (ns.is_some() && !kind.namespaced) || (kind.namespaced && ns.is_none() && name.is_some()) {
        return Err(ApiError::not_found_path());
    }
    if let Some(s) = &sub {
        let served =
            (kind.has_status && s == "status") || (kind.plural == "namespaces" && s == "finalize");
        if !served {
            return Err(ApiError::not_found_path());
        }
    }
    Ok(Route::Resource(Target {
        kind,
        ns,
        name,
        sub,
    }))
}

/// Entry point for every request.
pub async fn handle(app: Arc<App>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = parse_query(req.uri().query());
    let public = matches!(
        path.as_str(),
        "/healthz" | "/readyz" | "/livez" | "/version"
    );
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|h| h.to_str().ok())
        .map(str::to_string);
    let authorized = match &auth {
        Some(h) => h
            .strip_prefix("Bearer ")
            .is_some_and(|t| t.trim() == app.token),
        None => public,
    };
    if !authorized {
        return Ok(error_response(&ApiError::unauthorized()));
    }
    let content_type = req
        .headers()
        .get("content-type")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_string();
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return Ok(error_response(&ApiError::bad_request(format!(
                "reading body: {e}"
            ))))
        }
    };
    let resp = match route(&app, &path) {
        Err(e) => error_response(&e),
        Ok(Route::Text(t)) => Response::builder()
            .header("content-type", "text/plain")
            .body(Full::new(Bytes::from_static(t.as_bytes())).boxed())
            .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()).boxed())),
        Ok(Route::Json(v)) => json_response(200, &v),
        Ok(Route::Resource(t)) => {
            let res = dispatch(&app, &method, t, &query, &content_type, &body).await;
            match res {
                Ok(r) => r,
                Err(e) => error_response(&e),
            }
        }
    };
    tracing::debug!(%method, %path, code = resp.status().as_u16(), "request");
    Ok(resp)
}

fn parse_body(body: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the request body is not valid JSON: {e}")))
}

async fn dispatch(
    app: &App,
    method: &Method,
    t: Target,
    q: &HashMap<String, String>,
    content_type: &str,
    body: &Bytes,
) -> Result<Response<Body>, ApiError> {
    let dry_run = q.get("dryRun").is_some_and(|v| v == "All");
    let ns = t.ns.as_deref();
    match (method, t.name.as_deref()) {
        (&Method::GET, Some(name)) => {
            let obj = app
                .store
                .get(t.kind, ns.unwrap_or(""), name)
                .ok_or_else(|| ApiError::not_found(t.kind, name))?;
            Ok(json_response(200, &obj))
        }
        (&Method::GET, None) if q.get("watch").is_some_and(|w| w == "true" || w == "1") => {
            watch(app, t.kind, ns, q)
        }
        (&Method::GET, None) => list(app, t.kind, ns, q),
        (&Method::POST, None) => {
            let obj = create(app, t.kind, ns, parse_body(body)?, dry_run)?;
            Ok(json_response(201, &obj))
        }
        (&Method::PUT, Some(name)) => {
            let body = parse_body(body)?;
            // Checked before the object is looked up, as the real handler does: a PUT to a
            // missing name with a mismatched body is a 400, not a 404.
            let body_name = body
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("");
            if !body_name.is_empty() && body_name != name {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({body_name}) does not match the name on the URL ({name})"
                )));
            }
            if !t.kind.unconditional_update && rv_of(&body).is_empty() {
                if app.store.get(t.kind, ns.unwrap_or(""), name).is_none() {
                    return Err(ApiError::not_found(t.kind, name));
                }
                return Err(ApiError::resource_version_required(t.kind, name));
            }
            let (obj, _) = update(app, &t, name, dry_run, |_current| Ok(body.clone()))?;
            Ok(json_response(200, &obj))
        }
        (&Method::PATCH, Some(name)) => patch_object(app, &t, name, content_type, body, dry_run),
        (&Method::DELETE, Some(name)) => {
            let opts = if body.is_empty() {
                json!({})
            } else {
                parse_body(body)?
            };
            delete(app, t.kind, ns.unwrap_or(""), name, &opts, dry_run)
        }
        (&Method::DELETE, None) => {
            let (items, _) = app.store.list(t.kind, ns);
            let sel = selectors(t.kind, q)?;
            let mut deleted = Vec::new();
            for obj in items.into_iter().filter(|o| matches(&sel, o)) {
                if delete(
                    app,
                    t.kind,
                    meta_str(&obj, "namespace"),
                    meta_str(&obj, "name"),
                    &json!({}),
                    dry_run,
                )
                .is_ok()
                {
                    deleted.push(obj);
                }
            }
            Ok(json_response(
                200,
                &list_body(t.kind, deleted, app.store.current_rv()),
            ))
        }
        _ => Err(ApiError::method_not_allowed(t.kind, method.as_str())),
    }
}

type Selectors = (LabelSelector, FieldSelector);

fn selectors(kind: &Kind, q: &HashMap<String, String>) -> Result<Selectors, ApiError> {
    let l = LabelSelector::parse(q.get("labelSelector").map(String::as_str).unwrap_or(""))
        .map_err(ApiError::bad_request)?;
    let f = FieldSelector::parse(
        q.get("fieldSelector").map(String::as_str).unwrap_or(""),
        kind.field_selectors,
    )
    .map_err(ApiError::bad_request)?;
    Ok((l, f))
}

fn matches(sel: &Selectors, obj: &Value) -> bool {
    sel.0
        .matches(obj["metadata"].get("labels").and_then(Value::as_object))
        && sel.1.matches(obj)
}

fn list_body(kind: &Kind, items: Vec<Value>, rv: u64) -> Value {
    json!({
        "kind": format!("{}List", kind.kind),
        "apiVersion": kind.api_version(),
        "metadata": {"resourceVersion": rv.to_string()},
        "items": items,
    })
}

fn list(
    app: &App,
    kind: &Kind,
    ns: Option<&str>,
    q: &HashMap<String, String>,
) -> Result<Response<Body>, ApiError> {
    let sel = selectors(kind, q)?;
    let (items, rv) = app.store.list(kind, ns);
    let items: Vec<Value> = items.into_iter().filter(|o| matches(&sel, o)).collect();
    Ok(json_response(200, &list_body(kind, items, rv)))
}

fn watch_line(ty: &str, obj: &Value) -> Bytes {
    let mut line = serde_json::to_vec(&json!({"type": ty, "object": obj})).unwrap_or_default();
    line.push(b'\n');
    Bytes::from(line)
}

fn watch(
    app: &App,
    kind: &'static Kind,
    ns: Option<&str>,
    q: &HashMap<String, String>,
) -> Result<Response<Body>, ApiError> {
    let sel = selectors(kind, q)?;
    let timeout = q
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .unwrap_or(1800);
    let since = q.get("resourceVersion").map(String::as_str).unwrap_or("");
    let ns = ns.map(str::to_string);
    let keep = move |c: &Change| {
        c.plural == kind.plural
            && ns.as_ref().is_none_or(|n| *n == c.namespace)
            && matches(&sel, &c.object)
    };
    let (tx, mut rx_out) = tokio::sync::mpsc::channel::<Bytes>(256);
    let (initial, mut live): (Vec<Bytes>, _) = if since.is_empty() || since == "0" {
        let (items, rx) = app.store.snapshot_and_watch(kind, None);
        let lines = items
            .into_iter()
            .map(|o| Change {
                rv: 0,
                plural: kind.plural,
                namespace: meta_str(&o, "namespace").into(),
                kind: "ADDED",
                object: o,
            })
            .filter(|c| keep(c))
            .map(|c| watch_line("ADDED", &c.object))
            .collect();
        (lines, Some(rx))
    } else {
        let since: u64 = since
            .parse()
            .map_err(|_| ApiError::bad_request(format!("invalid resource version {since:?}")))?;
        match app.store.watch_from(since) {
            Ok((backlog, rx)) => (
                backlog
                    .iter()
                    .filter(|c| keep(c))
                    .map(|c| watch_line(c.kind, &c.object))
                    .collect(),
                Some(rx),
            ),
            Err(floor) => {
                let e = ApiError::expired(format!("too old resource version: {since} ({floor})"));
                (vec![watch_line("ERROR", &e.to_status())], None)
            }
        }
    };
    tokio::spawn(async move {
        let deadline = tokio::time::sleep(Duration::from_secs(timeout));
        tokio::pin!(deadline);
        for line in initial {
            if tx.send(line).await.is_err() {
                return;
            }
        }
        let Some(rx) = live.as_mut() else { return };
        loop {
            tokio::select! {
                _ = &mut deadline => return,
                _ = tx.closed() => return,
                ev = rx.recv() => match ev {
                    Ok(c) if keep(&c) => {
                        if tx.send(watch_line(c.kind, &c.object)).await.is_err() { return; }
                    }
                    Ok(_) => {}
                    Err(RecvError::Lagged(_)) => {
                        let e = ApiError::expired("watch fell behind; too old resource version".into());
                        let _ = tx.send(watch_line("ERROR", &e.to_status())).await;
                        return;
                    }
                    Err(RecvError::Closed) => return,
                }
            }
        }
    });
    let stream = futures::stream::poll_fn(move |cx| {
        rx_out
            .poll_recv(cx)
            .map(|o| o.map(|b| Ok::<_, Infallible>(Frame::data(b))))
    });
    Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .header("transfer-encoding", "chunked")
        .body(StreamBody::new(stream).boxed())
        .map_err(|e| ApiError::internal(e.to_string()))
}

fn ensure_metadata(obj: &mut Value) {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
}

/// Checks that the namespace of a new object exists and is not being deleted
/// (the NamespaceLifecycle admission plugin).
fn check_namespace(app: &App, kind: &Kind, ns: &str, name: &str) -> Result<(), ApiError> {
    let nsobj = app
        .store
        .get(&NAMESPACES, "", ns)
        .ok_or_else(|| ApiError::not_found(&NAMESPACES, ns))?;
    if !meta_str(&nsobj, "deletionTimestamp").is_empty() {
        return Err(ApiError::namespace_terminating(kind, name, ns));
    }
    Ok(())
}

/// Creates an object of any kind: defaults, admission, validation, then the store.
pub fn create(
    app: &App,
    kind: &'static Kind,
    ns: Option<&str>,
    mut obj: Value,
    dry_run: bool,
) -> Result<Value, ApiError> {
    if !kind.user_create {
        return Err(ApiError::method_not_allowed(kind, "create"));
    }
    validate::check_decodable(kind, &obj)?;
    check_type(kind, &obj)?;
    ensure_metadata(&mut obj);
    if kind.namespaced {
        let url_ns = ns.unwrap_or("");
        let body_ns = meta_str(&obj, "namespace");
        if url_ns.is_empty() {
            return Err(ApiError::bad_request(
                "the namespace of the object must be given in the URL",
            ));
        }
        if !body_ns.is_empty() && body_ns != url_ns {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        obj["metadata"]["namespace"] = json!(url_ns);
    } else if let Some(m) = obj["metadata"].as_object_mut() {
        m.remove("namespace");
    }
    if meta_str(&obj, "name").is_empty() {
        let gen = meta_str(&obj, "generateName").to_string();
        if !gen.is_empty() {
            obj["metadata"]["name"] = json!(format!("{gen}{}", util::random_suffix(5)));
        }
    }
    let name = meta_str(&obj, "name").to_string();
    if kind.namespaced {
        check_namespace(app, kind, ns.unwrap_or(""), &name)?;
    }
    validate::default_on_create(kind, &mut obj, &app.store);
    validate::validate(kind, &obj, None)?;
    if let Some(m) = obj["metadata"].as_object_mut() {
        for f in [
            "resourceVersion",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
            "managedFields",
            "selfLink",
        ] {
            m.remove(f);
        }
        m.insert("uid".into(), json!(util::new_uid()));
        m.insert("creationTimestamp".into(), json!(util::now_rfc3339()));
    }
    if dry_run {
        if app.store.get(kind, ns.unwrap_or(""), &name).is_some() {
            return Err(ApiError::already_exists(kind, &name));
        }
        obj["apiVersion"] = json!(kind.api_version());
        obj["kind"] = json!(kind.kind);
        return Ok(obj);
    }
    app.store.create(kind, obj).map_err(|e| match e {
        StoreError::Exists => ApiError::already_exists(kind, &name),
        other => ApiError::internal(other.to_string()),
    })
}

fn check_type(kind: &Kind, obj: &Value) -> Result<(), ApiError> {
    let k = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    let v = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    if (!k.is_empty() && k != kind.kind) || (!v.is_empty() && v != kind.api_version()) {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({v}) does not match the expected API version ({}) or kind {k:?} is not {:?}",
            kind.api_version(),
            kind.kind
        )));
    }
    Ok(())
}

/// Read-modify-write for PUT and PATCH: `make` builds the desired object from the current one;
/// a resourceVersion it carries must match (409 Conflict otherwise). Returns the stored object.
fn update(
    app: &App,
    t: &Target,
    name: &str,
    dry_run: bool,
    make: impl Fn(&Value) -> Result<Value, ApiError>,
) -> Result<(Value, bool), ApiError> {
    let kind = t.kind;
    let ns = t.ns.as_deref().unwrap_or("");
    for _ in 0..16 {
        let current = app
            .store
            .get(kind, ns, name)
            .ok_or_else(|| ApiError::not_found(kind, name))?;
        let mut new = make(&current)?;
        validate::check_decodable(kind, &new)?;
        check_type(kind, &new)?;
        ensure_metadata(&mut new);
        let body_name = meta_str(&new, "name");
        if !body_name.is_empty() && body_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        let body_ns = meta_str(&new, "namespace");
        if kind.namespaced && !body_ns.is_empty() && body_ns != ns {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        let requested_rv = rv_of(&new).to_string();
        if !requested_rv.is_empty() && requested_rv != rv_of(&current) {
            return Err(ApiError::stale(kind, name));
        }
        // Fields the client cannot change through this endpoint.
        let mut merged = if t.sub.as_deref() == Some("status") {
            let mut c = current.clone();
            c["status"] = new.get("status").cloned().unwrap_or(json!({}));
            c
        } else {
            if kind.has_status {
                new["status"] = current.get("status").cloned().unwrap_or(Value::Null);
            }
            if kind.plural == "namespaces" && t.sub.as_deref() != Some("finalize") {
                new["spec"] = current.get("spec").cloned().unwrap_or(Value::Null);
            }
            new
        };
        for f in [
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "namespace",
            "name",
        ] {
            match current["metadata"].get(f) {
                Some(v) => merged["metadata"][f] = v.clone(),
                None => {
                    if let Some(m) = merged["metadata"].as_object_mut() {
                        m.remove(f);
                    }
                }
            }
        }
        if let Some(st) = merged.as_object_mut().filter(|_| !kind.has_status) {
            st.remove("status");
        }
        validate::validate(kind, &merged, Some(&current))?;
        validate::admit_update(kind, &merged, &current, &app.store)?;
        if dry_run {
            return Ok((merged, false));
        }
        match app.store.update(kind, merged, rv_of(&current)) {
            Ok(v) => return Ok((v, true)),
            Err(StoreError::Stale { .. }) if requested_rv.is_empty() => continue,
            Err(StoreError::Stale { .. }) => return Err(ApiError::stale(kind, name)),
            Err(StoreError::Missing) => return Err(ApiError::not_found(kind, name)),
            Err(e) => return Err(ApiError::internal(e.to_string())),
        }
    }
    Err(ApiError::conflict(
        kind,
        name,
        "too many concurrent updates; try again",
    ))
}

fn patch_object(
    app: &App,
    t: &Target,
    name: &str,
    ct: &str,
    body: &Bytes,
    dry_run: bool,
) -> Result<Response<Body>, ApiError> {
    let p = parse_body(body)?;
    let ns = t.ns.as_deref().unwrap_or("");
    match ct {
        "application/merge-patch+json" | "application/strategic-merge-patch+json" => {
            let (obj, _) = update(app, t, name, dry_run, |cur| {
                let mut c = cur.clone();
                patch::merge(&mut c, &p);
                Ok(c)
            })?;
            Ok(json_response(200, &obj))
        }
        "application/json-patch+json" => {
            let (obj, _) = update(app, t, name, dry_run, |cur| {
                let mut c = cur.clone();
                patch::json_patch(&mut c, &p).map_err(|e| ApiError {
                    code: 422,
                    reason: "Invalid",
                    message: e,
                    details: None,
                })?;
                Ok(c)
            })?;
            Ok(json_response(200, &obj))
        }
        "application/apply-patch+yaml" => {
            // Server-side apply, reduced to "merge the applied configuration": enough for the
            // single-manager use here; field ownership and conflicts are not tracked.
            if app.store.get(t.kind, ns, name).is_none() && t.sub.is_none() {
                let mut obj = p.clone();
                ensure_metadata(&mut obj);
                if meta_str(&obj, "name").is_empty() {
                    obj["metadata"]["name"] = json!(name);
                }
                let created = create(app, t.kind, t.ns.as_deref(), obj, dry_run)?;
                return Ok(json_response(201, &created));
            }
            let (obj, _) = update(app, t, name, dry_run, |cur| {
                let mut c = cur.clone();
                let mut p = p.clone();
                if let Some(m) = p.get_mut("metadata").and_then(Value::as_object_mut) {
                    m.remove("resourceVersion");
                }
                patch::merge(&mut c, &p);
                Ok(c)
            })?;
            Ok(json_response(200, &obj))
        }
        other => Err(ApiError::unsupported_media(other)),
    }
}

/// Deletes an object the way the real registry does: finalizers keep it (Terminating, with a
/// deletionTimestamp) until they are removed; otherwise it goes at once.
pub fn delete(
    app: &App,
    kind: &'static Kind,
    ns: &str,
    name: &str,
    opts: &Value,
    dry_run: bool,
) -> Result<Response<Body>, ApiError> {
    let current = app
        .store
        .get(kind, ns, name)
        .ok_or_else(|| ApiError::not_found(kind, name))?;
    let uid = meta_str(&current, "uid").to_string();
    if let Some(want) = opts.pointer("/preconditions/uid").and_then(Value::as_str) {
        if want != uid {
            return Err(ApiError::conflict(
                kind,
                name,
                &format!(
                    "Precondition failed: UID in precondition: {want}, UID in object meta: {uid}"
                ),
            ));
        }
    }
    if let Some(want) = opts
        .pointer("/preconditions/resourceVersion")
        .and_then(Value::as_str)
    {
        if want != rv_of(&current) {
            return Err(ApiError::conflict(
                kind,
                name,
                &format!(
                    "Precondition failed: ResourceVersion in precondition: {want}, ResourceVersion in object meta: {}",
                    rv_of(&current)
                ),
            ));
        }
    }
    if kind.plural == "namespaces" && matches!(name, "default" | "kube-system" | "kube-public") {
        return Err(ApiError::forbidden(
            kind,
            name,
            "this namespace may not be deleted",
        ));
    }
    let has_finalizers = current["metadata"]["finalizers"]
        .as_array()
        .is_some_and(|f| !f.is_empty());
    if kind.plural == "namespaces" || has_finalizers {
        if !meta_str(&current, "deletionTimestamp").is_empty() || dry_run {
            return Ok(json_response(200, &current));
        }
        let mut obj = current.clone();
        obj["metadata"]["deletionTimestamp"] = json!(util::now_rfc3339());
        obj["metadata"]["deletionGracePeriodSeconds"] = json!(0);
        if kind.plural == "namespaces" {
            obj["status"]["phase"] = json!("Terminating");
        }
        let stored = app
            .store
            .update(kind, obj, rv_of(&current))
            .map_err(|e| match e {
                StoreError::Missing => ApiError::not_found(kind, name),
                _ => ApiError::stale(kind, name),
            })?;
        return Ok(json_response(200, &stored));
    }
    if !dry_run {
        app.store
            .remove(kind, ns, name, None)
            .map_err(|_| ApiError::not_found(kind, name))?;
    }
    if kind.return_deleted_object {
        return Ok(json_response(200, &current));
    }
    let mut details = json!({"name": name, "kind": kind.plural, "uid": uid});
    if !kind.group.is_empty() {
        details["group"] = json!(kind.group);
    }
    Ok(json_response(
        200,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}),
    ))
}
