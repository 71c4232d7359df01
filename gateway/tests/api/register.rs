//! Command registration through serenity's HTTP client against a fake Discord.

use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::routing::put;
use axum::{Json, Router};
use onomancer_gateway::discord::commands::{register_commands, COMMANDS};
use serde_json::{json, Value};
use serenity::all::{ApplicationId, GuildId, HttpBuilder};

#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<(String, Value)>>>);

async fn overwrite(
    State(seen): State<Seen>,
    path: Path<Vec<(String, String)>>,
    Json(body): Json<Value>,
) -> Json<Value> {
    let p: Vec<String> = path.0.into_iter().map(|(_, v)| v).collect();
    seen.0.lock().unwrap().push((p.join("/"), body.clone()));
    let guild = p.get(1).cloned();
    let out: Vec<Value> = body
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut c = c.clone();
            c["id"] = json!(format!("{}", 1000 + i));
            c["application_id"] = json!(p[0]);
            c["version"] = json!("1");
            // Discord answers with the command's type (1 when not sent) and an empty
            // description for message commands.
            if c.get("type").is_none() {
                c["type"] = json!(1);
            }
            if c.get("description").is_none() {
                c["description"] = json!("");
            }
            if let Some(g) = &guild {
                c["guild_id"] = json!(g);
            }
            c
        })
        .collect();
    Json(Value::Array(out))
}

async fn fake_discord() -> (String, Seen) {
    let seen = Seen::default();
    let app = Router::new()
        .route("/api/v10/applications/{app}/commands", put(overwrite))
        .route(
            "/api/v10/applications/{app}/guilds/{guild}/commands",
            put(overwrite),
        )
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), seen)
}

#[tokio::test]
async fn guild_and_global_registration_send_every_command_definition() {
    let (base, seen) = fake_discord().await;
    let http = HttpBuilder::new("Bot test-token")
        .proxy(base)
        .ratelimiter_disabled(true)
        .application_id(ApplicationId::new(555))
        .build();

    let created = register_commands(&http, Some(GuildId::new(111)))
        .await
        .unwrap();
    assert_eq!(created.len(), COMMANDS.len());
    register_commands(&http, None).await.unwrap();

    let seen = seen.0.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].0, "555/111");
    assert_eq!(seen[1].0, "555");
    let body = &seen[0].1;
    let names: Vec<&str> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "transform",
            "digest",
            "decisions",
            "usage",
            "status",
            "help",
            "Record decision"
        ]
    );
    // The message command: type 3, no description or options (Discord refuses them).
    let record = &body[6];
    assert_eq!(record["type"], 3);
    assert!(record.get("description").is_none(), "{record}");
    assert_eq!(record["options"], json!([]));
    assert_eq!(record["contexts"], json!([0]));
    let transform = &body[0];
    assert_eq!(transform["contexts"], json!([0]));
    let opts = transform["options"].as_array().unwrap();
    assert_eq!(opts[0]["name"], "link");
    assert_eq!(opts[0]["type"], 3);
    assert_eq!(opts[1]["name"], "file");
    assert_eq!(opts[1]["type"], 11);
    let decisions = &body[2];
    let query = &decisions["options"][0];
    assert_eq!(
        (
            &query["type"],
            &query["name"],
            &query["description"],
            &query["required"]
        ),
        (
            &json!(3),
            &json!("query"),
            &json!("What to look for (leave empty for the latest decisions)"),
            &json!(false)
        )
    );
    let digest = &body[1];
    assert_eq!(digest["options"][0]["choices"].as_array().unwrap().len(), 4);
    assert_eq!(
        digest["options"][0]["choices"][0],
        json!({"name": "leadership", "value": "leadership"})
    );
}
