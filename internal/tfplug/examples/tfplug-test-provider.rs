//! tfplug's own test provider (`testnet-infra/tfplugtest`): one resource, one data source, one
//! ephemeral resource and one function, keeping objects as JSON files in a directory so tests can
//! change them behind Terraform's back. It exercises every part of the framework under the real
//! CLI; it is not shipped.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use tfplug::schema::validators::{from_fn, int_range};
use tfplug::{
    Attribute, Block, BlockNesting, Context, DataSource, Diagnostics, EphemeralResource, Function,
    FunctionError, NestedBlock, Opened, Parameter, PlanChange, Private, Provider, Resource, Schema,
    Signature, Type, Value,
};

#[derive(Default, Clone)]
struct Shared {
    /// `None` until configured, and during plan when the configuration is still unknown.
    dir: Arc<RwLock<Option<PathBuf>>>,
}

impl Shared {
    fn dir(&self, diags: &mut Diagnostics) -> Option<PathBuf> {
        let d = self.dir.read().ok().and_then(|g| g.clone());
        if d.is_none() {
            diags.error("Provider not configured", "store_dir is not known yet.");
        }
        d
    }
    fn log(&self, line: &str) {
        if let Some(d) = self.dir.read().ok().and_then(|g| g.clone()) {
            use std::io::Write;
            if let Ok(mut f) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(d.join("ephemeral.log"))
            {
                let _ = writeln!(f, "{line}");
            }
        }
    }
}

struct TestProvider(Shared);

#[async_trait]
impl Provider for TestProvider {
    fn type_name(&self) -> &'static str {
        "tfplugtest"
    }
    fn schema(&self) -> Schema {
        Schema::new(
            Block::new().attr(
                Attribute::string("store_dir")
                    .required()
                    .describe("Directory holding the objects."),
            ),
        )
    }
    async fn configure(&self, _ctx: &Context, config: &Value, _diags: &mut Diagnostics) {
        let dir = config.get("store_dir").as_str().map(PathBuf::from);
        tracing::debug!(known = dir.is_some(), "configured tfplugtest");
        if let Ok(mut g) = self.0.dir.write() {
            *g = dir;
        }
    }
    fn resources(&self) -> Vec<Arc<dyn Resource>> {
        vec![Arc::new(Thing(self.0.clone()))]
    }
    fn data_sources(&self) -> Vec<Arc<dyn DataSource>> {
        vec![Arc::new(Lookup(self.0.clone()))]
    }
    fn ephemeral_resources(&self) -> Vec<Arc<dyn EphemeralResource>> {
        vec![Arc::new(Token(self.0.clone()))]
    }
    fn functions(&self) -> Vec<Arc<dyn Function>> {
        vec![Arc::new(Upper)]
    }
}

struct Thing(Shared);

fn thing_path(dir: &std::path::Path, id: &str) -> PathBuf {
    dir.join(format!("{id}.json"))
}

fn to_json(v: &Value) -> serde_json::Value {
    match v {
        Value::Null | Value::Unknown(_) => serde_json::Value::Null,
        Value::Bool(b) => (*b).into(),
        Value::Number(n) => n
            .as_i64()
            .map(Into::into)
            .unwrap_or_else(|| n.as_f64().into()),
        Value::String(s) => s.clone().into(),
        Value::List(l) | Value::Set(l) | Value::Tuple(l) => l.iter().map(to_json).collect(),
        Value::Map(m) | Value::Object(m) => m
            .iter()
            .map(|(k, v)| (k.clone(), to_json(v)))
            .collect::<serde_json::Map<_, _>>()
            .into(),
    }
}

fn from_json(j: &serde_json::Value) -> Value {
    match j {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => n.as_i64().map(Value::int).unwrap_or(Value::Null),
        serde_json::Value::String(s) => Value::string(s.clone()),
        serde_json::Value::Array(a) => Value::List(a.iter().map(from_json).collect()),
        serde_json::Value::Object(m) => {
            Value::Object(m.iter().map(|(k, v)| (k.clone(), from_json(v))).collect())
        }
    }
}

/// The stored form of a thing: what the "remote system" holds.
fn stored(v: &Value, revision: i64) -> serde_json::Value {
    let mut o = serde_json::Map::new();
    for k in ["name", "size", "secret", "id"] {
        o.insert(k.into(), to_json(v.get(k)));
    }
    o.insert("tags".into(), to_json(v.get("tags")));
    o.insert("rule".into(), to_json(v.get("rule")));
    o.insert("revision".into(), revision.into());
    serde_json::Value::Object(o)
}

impl Thing {
    fn load(&self, dir: &std::path::Path, id: &str) -> Option<serde_json::Value> {
        let b = std::fs::read(thing_path(dir, id)).ok()?;
        serde_json::from_slice(&b).ok()
    }
    async fn wait(&self, ctx: &Context, config: &Value, diags: &mut Diagnostics) -> bool {
        let ms = config.get("delay_ms").as_i64().unwrap_or(0);
        if ms <= 0 {
            return true;
        }
        tracing::info!(delay_ms = ms, "slow apply started");
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(ms as u64)) => true,
            _ = ctx.cancel.cancelled() => {
                diags.error("Apply interrupted", "Terraform asked the provider to stop; nothing was written.");
                false
            }
        }
    }
    fn write(
        &self,
        dir: &std::path::Path,
        planned: &Value,
        revision: i64,
        diags: &mut Diagnostics,
    ) -> Option<Value> {
        let id = format!("thing-{}", planned.get("name").as_str().unwrap_or_default());
        let mut state = planned.clone();
        state.set("id", Value::string(&id));
        state.set("revision", Value::int(revision));
        if let Err(e) = std::fs::write(thing_path(dir, &id), stored(&state, revision).to_string()) {
            diags.error("Cannot store thing", format!("{}: {e}", dir.display()));
            return None;
        }
        Some(state)
    }
}

#[async_trait]
impl Resource for Thing {
    fn type_name(&self) -> &'static str {
        "tfplugtest_thing"
    }
    fn schema(&self) -> Schema {
        Schema::new(
            Block::new()
                .describe("A thing kept as a JSON file.")
                .attr(
                    Attribute::string("name")
                        .required()
                        .requires_replace()
                        .describe("Name; changing it replaces the thing.")
                        .validate(from_fn("Lowercase letters, digits and `-`.", |v| {
                            let s = v.as_str().unwrap_or_default();
                            if !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
                                Ok(())
                            } else {
                                Err(format!("{s:?} is not a valid name. Use lowercase letters, digits and '-'."))
                            }
                        })),
                )
                .attr(Attribute::number("size").default(Value::int(1)).validate(int_range(1, 1000)).describe("Size, updated in place."))
                .attr(Attribute::string_map("tags").optional())
                .attr(Attribute::string("secret").optional().sensitive())
                .attr(Attribute::string("password_wo").optional().write_only().describe("Write-only."))
                .attr(Attribute::bool("password_seen").computed().describe("Whether a write-only password was given."))
                .attr(Attribute::number("delay_ms").optional().describe("Sleep this long during apply."))
                .attr(Attribute::string("id").computed().use_state_for_unknown())
                .attr(Attribute::string("upper_name").computed())
                .attr(Attribute::number("revision").computed())
                .block(NestedBlock::new(
                    "rule",
                    BlockNesting::List,
                    Block::new().attr(Attribute::number("port").required()).attr(Attribute::string("proto").optional()),
                )),
        )
        .version(1)
    }

    async fn modify_plan(&self, _ctx: &Context, plan: &mut PlanChange, _diags: &mut Diagnostics) {
        if plan.is_destroy() {
            return;
        }
        if let Some(n) = plan.planned.get("name").as_str().map(str::to_uppercase) {
            plan.planned.set("upper_name", Value::string(n));
        }
        let seen = !plan.config.get("password_wo").is_null();
        if plan.is_create() || plan.prior.get("password_seen").as_bool() != Some(seen) {
            plan.planned.set("password_seen", Value::Bool(seen));
        } else {
            plan.planned
                .set("password_seen", plan.prior.get("password_seen").clone());
        }
    }

    async fn create(
        &self,
        ctx: &Context,
        planned: &Value,
        config: &Value,
        private: &mut Private,
        diags: &mut Diagnostics,
    ) -> Option<Value> {
        let dir = self.0.dir(diags)?;
        if !self.wait(ctx, config, diags).await {
            return None;
        }
        private.set("created_by", "tfplug-test".into());
        self.write(&dir, planned, 1, diags)
    }

    async fn read(
        &self,
        _ctx: &Context,
        state: &Value,
        _private: &mut Private,
        diags: &mut Diagnostics,
    ) -> Option<Value> {
        let dir = self.0.dir(diags)?;
        let id = state.get("id").as_str()?.to_string();
        let j = self.load(&dir, &id)?;
        let mut v = state.clone();
        for k in ["name", "size", "secret", "tags", "rule", "revision", "id"] {
            let got = from_json(&j[k]);
            let got = match (k, got) {
                ("tags", Value::Object(m)) => Value::Map(m),
                (_, g) => g,
            };
            v.set(k, got);
        }
        let name = v.get("name").as_str().unwrap_or_default().to_uppercase();
        v.set("upper_name", Value::string(name));
        Some(v)
    }

    async fn update(
        &self,
        ctx: &Context,
        prior: &Value,
        planned: &Value,
        config: &Value,
        _private: &mut Private,
        diags: &mut Diagnostics,
    ) -> Option<Value> {
        let dir = self.0.dir(diags)?;
        if !self.wait(ctx, config, diags).await {
            return None;
        }
        let rev = prior.get("revision").as_i64().unwrap_or(0) + 1;
        self.write(&dir, planned, rev, diags)
    }

    async fn delete(
        &self,
        _ctx: &Context,
        prior: &Value,
        _private: &Private,
        diags: &mut Diagnostics,
    ) {
        let Some(dir) = self.0.dir(diags) else { return };
        if let Some(id) = prior.get("id").as_str() {
            let _ = std::fs::remove_file(thing_path(&dir, id));
        }
    }

    async fn import(&self, _ctx: &Context, id: &str, diags: &mut Diagnostics) -> Option<Value> {
        let dir = self.0.dir(diags)?;
        if self.load(&dir, id).is_none() {
            diags.error(
                "Cannot import",
                format!("No thing with ID {id:?} exists in {}.", dir.display()),
            );
            return None;
        }
        Some(Value::object([
            ("id", Value::string(id)),
            ("password_seen", Value::Bool(false)),
        ]))
    }

    async fn upgrade_state(
        &self,
        _ctx: &Context,
        version: i64,
        mut state: serde_json::Value,
        diags: &mut Diagnostics,
    ) -> Option<Value> {
        // Version 0 stored size as a string.
        if version != 0 {
            diags.error("Unsupported state version", format!("version {version}"));
            return None;
        }
        if let Some(s) = state
            .get("size")
            .and_then(|s| s.as_str())
            .and_then(|s| s.parse::<i64>().ok())
        {
            state["size"] = s.into();
        }
        let mut v = from_json(&state);
        if let Value::Object(m) = &v.get("tags").clone() {
            v.set("tags", Value::Map(m.clone()));
        }
        Some(v)
    }
}

struct Lookup(Shared);

#[async_trait]
impl DataSource for Lookup {
    fn type_name(&self) -> &'static str {
        "tfplugtest_lookup"
    }
    fn schema(&self) -> Schema {
        Schema::new(
            Block::new()
                .attr(Attribute::string("name").required())
                .attr(Attribute::string("id").computed())
                .attr(Attribute::number("size").computed())
                .attr(Attribute::number("revision").computed()),
        )
    }
    async fn read(&self, _ctx: &Context, config: &Value, diags: &mut Diagnostics) -> Option<Value> {
        let dir = self.0.dir(diags)?;
        let name = config.get("name").as_str().unwrap_or_default();
        let id = format!("thing-{name}");
        let Some(j) = std::fs::read(thing_path(&dir, &id))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        else {
            diags.attr_error(
                tfplug::AttributePath::attr("name"),
                "No such thing",
                format!("No thing named {name:?} exists."),
            );
            return None;
        };
        let mut v = config.clone();
        v.set("id", Value::string(id));
        v.set("size", from_json(&j["size"]));
        v.set("revision", from_json(&j["revision"]));
        Some(v)
    }
}

struct Token(Shared);

#[async_trait]
impl EphemeralResource for Token {
    fn type_name(&self) -> &'static str {
        "tfplugtest_token"
    }
    fn schema(&self) -> Schema {
        Schema::new(
            Block::new()
                .attr(Attribute::string("name").required())
                .attr(Attribute::number("renew_every_ms").optional())
                .attr(Attribute::string("token").computed().sensitive()),
        )
    }
    async fn open(
        &self,
        _ctx: &Context,
        config: &Value,
        _diags: &mut Diagnostics,
    ) -> Option<Opened> {
        let name = config.get("name").as_str().unwrap_or_default().to_string();
        self.0.log(&format!("open {name}"));
        let mut private = Private::default();
        private.set("name", name.clone().into());
        let every = config.get("renew_every_ms").as_i64();
        if let Some(ms) = every {
            private.set("every", ms.into());
        }
        let mut result = config.clone();
        result.set("token", Value::string(format!("tok-{name}")));
        Some(Opened {
            result,
            private,
            renew_at: every.map(|ms| SystemTime::now() + Duration::from_millis(ms as u64)),
        })
    }
    async fn renew(
        &self,
        _ctx: &Context,
        private: &mut Private,
        _diags: &mut Diagnostics,
    ) -> Option<SystemTime> {
        self.0.log(&format!(
            "renew {}",
            private
                .get("name")
                .and_then(|n| n.as_str())
                .unwrap_or_default()
        ));
        private
            .get("every")
            .and_then(|e| e.as_u64())
            .map(|ms| SystemTime::now() + Duration::from_millis(ms))
    }
    async fn close(&self, _ctx: &Context, private: &Private, _diags: &mut Diagnostics) {
        self.0.log(&format!(
            "close {}",
            private
                .get("name")
                .and_then(|n| n.as_str())
                .unwrap_or_default()
        ));
    }
}

struct Upper;

#[async_trait]
impl Function for Upper {
    fn name(&self) -> &'static str {
        "upper"
    }
    fn signature(&self) -> Signature {
        Signature {
            parameters: vec![Parameter {
                name: "s".into(),
                ty: Type::String,
                allow_null: false,
                allow_unknown: false,
                description: String::new(),
            }],
            variadic: None,
            return_type: Type::String,
            summary: "Upper-cases a string.".into(),
            description: String::new(),
        }
    }
    async fn call(&self, args: Vec<Value>) -> Result<Value, FunctionError> {
        match args.first().and_then(|a| a.as_str()) {
            Some("panic") => panic!("asked to panic"),
            Some(s) => Ok(Value::string(s.to_uppercase())),
            None => Err(FunctionError {
                text: "s must be a string".into(),
                argument: Some(0),
            }),
        }
    }
}

fn main() -> std::process::ExitCode {
    tfplug::serve_blocking(TestProvider(Shared::default()))
}
