//! In-process benchmarks of the bridge's hot paths (criterion): catalog loading,
//! tools/list serialization for large catalogs, decision parsing, result building.
//! Whole-process figures (cold start, per-call overhead, memory, HTTP load) come from
//! `benches/whole_process.py` and `benches/load.rs`, both run by `benches/run.sh`.

use std::{hint::black_box, sync::Arc, time::Duration};

use criterion::{Criterion, criterion_group, criterion_main};
use rmcp::model::ListToolsResult;
use serde_json::json;
use tenet_mcp::{
    bridge::{Bridge, TOOLS_PAGE_SIZE, tool_result},
    catalog::{Catalog, Source},
    governor::Governor,
    report::{CallReport, Execution, Status},
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

fn bridge(catalog: Catalog) -> Bridge {
    let client = TenetClient::new(ClientConfig::new(
        "http://127.0.0.1:9",
        ApiKey::new("tnt_bench").unwrap(),
    ));
    Bridge::new(
        Arc::new(catalog),
        Governor::new(client, Default::default(), Duration::from_secs(1)),
        "default".into(),
    )
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
    let report = CallReport {
        status: Status::Executed,
        executed: true,
        job_id: Some("job_1".into()),
        execution: Some(Execution {
            status: 200,
            headers: Default::default(),
            body: json!({"id": 1, "name": "widget", "tags": ["a", "b", "c"]}),
            duration_ms: 12,
        }),
        ..CallReport::new("github.repos.get", "5f0c4b5e-0d43-4c4e-9b59-7d0c3d1b7e8a")
    };
    c.bench_function("result/tool_result_executed", |b| {
        b.iter(|| black_box(tool_result(black_box(&report))))
    });
}

criterion_group!(benches, catalogs, tools_list, decisions);
criterion_main!(benches);
