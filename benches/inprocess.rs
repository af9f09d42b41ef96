//! In-process benchmarks of the bridge's hot paths (criterion): catalog loading,
//! tools/list serialization for large catalogs, discovery-mode search, decision
//! parsing, result building. It also prints the bytes of `tools/list` per mode and toolset.
//! Whole-process figures (cold start, per-call overhead, memory, HTTP load) come from
//! `benches/whole_process.py` and `benches/load.rs`, both run by `benches/run.sh`.

use std::{hint::black_box, sync::Arc, time::Duration};

use criterion::{Criterion, criterion_group, criterion_main};
use rmcp::model::ListToolsResult;
use serde_json::json;
use tenet_mcp::{
    bridge::{Bridge, TOOLS_PAGE_SIZE, ToolMode, ToolOptions, tool_result},
    catalog::{Catalog, Source},
    discovery::{self, Index},
    governor::Governor,
    report::{CallReport, DownstreamResponse},
    selection::Selector,
    tenet::{ApiKey, ClientConfig, TenetClient, decision::parse_execute_reply},
};

/// The argument schema of every generated tool.
fn generated_input_schema() -> serde_json::Value {
    json!({
        "type": "object",
        "properties": {
            "id": {"type": "string", "description": "The resource id."},
            "expand": {"type": "array", "items": {"type": "string"}, "description": "Fields to expand."},
            "limit": {"type": "integer", "minimum": 1, "maximum": 100}
        },
        "required": ["id"],
        "additionalProperties": false
    })
}

/// A catalog of `n` generated tools with a realistic argument schema.
fn generated(n: usize) -> Catalog {
    let tools: Vec<_> = (0..n)
        .map(|i| {
            json!({
                "name": format!("gen.resource_{i}.get"),
                "title": "Get a generated resource",
                "description": "Reads one generated resource by id and returns it as JSON.",
                "method": if i % 3 == 0 { "DELETE" } else { "GET" },
                "path": "/resources/{id}",
                "input_schema": generated_input_schema()
            })
        })
        .collect();
    let text = json!({"service": "gen", "tools": tools}).to_string();
    Catalog::from_sources(vec![Source {
        origin: "gen.json".into(),
        text,
    }])
    .expect("a valid generated catalog")
}

/// A catalog of `n` tools with varied names, descriptions and parameters, as an imported
/// API description gives: services × resources × verbs, for discovery-mode search.
fn varied(n: usize) -> Catalog {
    const SERVICES: [&str; 6] = ["github", "stripe", "slack", "jira", "linear", "notion"];
    const RESOURCES: [&str; 20] = [
        "repos",
        "issues",
        "pulls",
        "users",
        "teams",
        "orgs",
        "gists",
        "actions",
        "checks",
        "releases",
        "customers",
        "charges",
        "invoices",
        "refunds",
        "payouts",
        "channels",
        "messages",
        "files",
        "reactions",
        "webhooks",
    ];
    const VERBS: [&str; 16] = [
        "list", "get", "create", "update", "delete", "search", "archive", "restore", "lock",
        "unlock", "merge", "close", "reopen", "assign", "export", "import",
    ];
    const WORDS: [&str; 12] = [
        "owner",
        "state",
        "label",
        "cursor",
        "since",
        "page",
        "amount",
        "currency",
        "channel",
        "email",
        "visibility",
        "sort",
    ];
    let mut services: Vec<Vec<serde_json::Value>> = vec![Vec::new(); SERVICES.len()];
    for i in 0..n {
        let service = i % SERVICES.len();
        let resource = RESOURCES[(i / SERVICES.len()) % RESOURCES.len()];
        let verb = VERBS[(i / (SERVICES.len() * RESOURCES.len())) % VERBS.len()];
        let suffix = i / (SERVICES.len() * RESOURCES.len() * VERBS.len());
        let name = format!(
            "{}.{resource}.{verb}{}",
            SERVICES[service],
            if suffix == 0 {
                String::new()
            } else {
                format!("V{suffix}")
            }
        );
        let (a, b) = (WORDS[i % WORDS.len()], WORDS[(i / 7) % WORDS.len()]);
        let mut properties = serde_json::Map::new();
        properties.insert("id".into(), json!({"type": "string"}));
        properties.insert(a.into(), json!({"type": "string"}));
        properties.insert(b.into(), json!({"type": "string"}));
        services[service].push(json!({
            "name": name,
            "title": format!("{verb} {resource}"),
            "description": format!("{verb} {resource} of a {} account, filtered by {a} and {b}.", SERVICES[service]),
            "method": if verb == "delete" { "DELETE" } else if matches!(verb, "list" | "get" | "search" | "export") { "GET" } else { "POST" },
            "path": format!("/{resource}/{{id}}/{verb}"),
            "input_schema": {"type": "object", "properties": properties, "required": ["id"]}
        }));
    }
    let sources = services
        .into_iter()
        .zip(SERVICES)
        .map(|(tools, service)| Source {
            origin: format!("{service}.json"),
            text: json!({"service": service, "tools": tools}).to_string(),
        })
        .collect();
    Catalog::from_sources(sources).expect("a valid varied catalog")
}

fn governor() -> Governor {
    let client = TenetClient::new(ClientConfig::new(
        "http://127.0.0.1:9",
        ApiKey::new("tnt_bench").unwrap(),
    ));
    Governor::new(client, Default::default(), Duration::from_secs(1))
}

fn bridge(catalog: Catalog) -> Bridge {
    Bridge::new(Arc::new(catalog), governor(), "default".into())
}

fn catalogs(c: &mut Criterion) {
    c.bench_function("catalog/load_shipped", |b| {
        b.iter(|| black_box(Catalog::embedded().unwrap()))
    });
    c.bench_function("catalog/load_generated_1000", |b| {
        b.iter(|| black_box(generated(1000)))
    });
    let schema = generated_input_schema();
    c.bench_function("schema/meta_validate", |b| {
        b.iter(|| black_box(jsonschema::meta::is_valid(black_box(&schema))))
    });
    c.bench_function("schema/compile", |b| {
        b.iter(|| black_box(jsonschema::validator_for(black_box(&schema)).is_ok()))
    });
}

fn tools_list(c: &mut Criterion) {
    for n in [1_000, 10_000] {
        let bridge = bridge(generated(n));
        c.bench_function(&format!("tools_list/all_pages_{n}"), |b| {
            b.iter(|| {
                let tools = bridge.tools();
                let mut bytes = 0;
                for page in tools.chunks(TOOLS_PAGE_SIZE) {
                    let result = ListToolsResult {
                        tools: page.to_vec(),
                        ..Default::default()
                    };
                    bytes += serde_json::to_vec(&result).unwrap().len();
                }
                black_box(bytes)
            })
        });
    }
    let bridge = bridge(generated(10_000));
    c.bench_function("tools_list/first_page_10000", |b| {
        b.iter(|| {
            let result = ListToolsResult {
                tools: bridge.tools()[..TOOLS_PAGE_SIZE].to_vec(),
                ..Default::default()
            };
            black_box(serde_json::to_vec(&result).unwrap().len())
        })
    });
}

/// The bytes of every `tools/list` page together.
fn list_bytes(bridge: &Bridge) -> usize {
    bridge
        .tools()
        .chunks(TOOLS_PAGE_SIZE)
        .map(|page| {
            let result = ListToolsResult {
                tools: page.to_vec(),
                ..Default::default()
            };
            serde_json::to_vec(&result).unwrap().len()
        })
        .sum()
}

/// Prints `tools/list` bytes and estimated tokens (bytes / 4) per mode and toolset.
fn list_sizes() {
    let shipped = Arc::new(Catalog::embedded().unwrap());
    let large = Arc::new(varied(1_850));
    let rows = [
        (
            "shipped catalog, --toolsets default",
            shipped.clone(),
            None,
            false,
        ),
        (
            "shipped catalog, --toolsets all",
            shipped.clone(),
            Some("all"),
            false,
        ),
        (
            "shipped catalog, --toolsets github.issues",
            shipped,
            Some("github.issues"),
            false,
        ),
        (
            "1,850 tools, --toolsets all",
            large.clone(),
            Some("all"),
            false,
        ),
        (
            "1,850 tools, --toolsets github",
            large,
            Some("github"),
            false,
        ),
    ];
    eprintln!("tools/list size | mode | bytes | ~tokens (bytes/4)");
    for (what, catalog, toolsets, custom) in rows {
        for mode in [ToolMode::Static, ToolMode::Dynamic] {
            let options = ToolOptions {
                selector: Selector::new(toolsets, &[], false, custom).unwrap(),
                scopes: None,
                mode,
            };
            let bridge =
                Bridge::with_options(catalog.clone(), governor(), "default".into(), options)
                    .unwrap();
            let bytes = list_bytes(&bridge);
            eprintln!("{what} | {mode:?} | {bytes} | {}", bytes / 4);
        }
    }
}

fn search(c: &mut Criterion) {
    list_sizes();
    let catalog = varied(1_850);
    let index = Index::new(catalog.tools().iter().enumerate());
    for query in [
        "create issue",
        "github.issues.lock",
        "refund a charge by currency",
    ] {
        c.bench_function(&format!("discovery/search_1850/{query}"), |b| {
            b.iter(|| {
                let hits = index.search(black_box(query), discovery::DEFAULT_LIMIT, |_| true);
                black_box(discovery::search_result(
                    hits.iter().filter_map(|&i| catalog.tools().get(i)),
                ))
            })
        });
    }
    c.bench_function("discovery/index_1850", |b| {
        b.iter(|| black_box(Index::new(catalog.tools().iter().enumerate())))
    });
}

fn decisions(c: &mut Criterion) {
    let bodies: [(u16, &[u8]); 3] = [
        (202, br#"{"jobId":"job_1","status":"pending","decision":"ALLOW","decisionId":"dec_1"}"#),
        (202, br#"{"decision":{"outcome":"ESCALATE","id":"d9","reviewId":"rev_2","reason_codes":["RULE_irreversible-escalate"]}}"#),
        (403, br#"{"decision":"BLOCK","decisionId":"d1","reasonCodes":["RULE_block-irreversible-on-prod"]}"#),
    ];
    c.bench_function("decision/parse_3_shapes", |b| {
        b.iter(|| {
            for (status, body) in bodies {
                black_box(parse_execute_reply(status, body));
            }
        })
    });
    let mut report = CallReport::new("github.repos.get", "5f0c4b5e-0d43-4c4e-9b59-7d0c3d1b7e8a");
    report.job_id = Some("job_1".into());
    let report = report.executed(DownstreamResponse {
        status: 200,
        headers: Default::default(),
        body: json!({"id": 1, "name": "widget", "tags": ["a", "b", "c"]}),
        duration_ms: 12,
    });
    c.bench_function("result/tool_result_executed", |b| {
        b.iter(|| black_box(tool_result(black_box(&report))))
    });
}

criterion_group!(benches, catalogs, tools_list, search, decisions);
criterion_main!(benches);
