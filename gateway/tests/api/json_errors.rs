//! Every error answer is JSON `{"error": <code>, "message": <text>}`, axum's own rejections
//! included: unknown route, wrong method, bad path encoding, bad query string, body limits,
//! missing or wrong content type.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::{spawn_app, TestApp, API_KEY, GITHUB_SECRET};

/// Sends a request and checks the error's shape; returns the `error` code.
async fn error_of(
    app: &TestApp,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    status: StatusCode,
) -> String {
    let mut req = app
        .client
        .request(method.clone(), format!("{}{path}", app.address))
        .body(body.to_vec());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), status, "{method} {path}");
    assert_eq!(
        resp.headers()["content-type"],
        "application/json",
        "{method} {path}"
    );
    let v: Value = resp.json().await.unwrap();
    let obj = v.as_object().unwrap();
    assert!(
        obj["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{v}"
    );
    obj["error"].as_str().expect("error is a string").to_owned()
}

/// One request and the error it must get.
struct Case<'a> {
    method: Method,
    path: &'a str,
    headers: Vec<(&'a str, &'a str)>,
    body: &'a [u8],
    status: StatusCode,
    code: &'a str,
}

impl<'a> Case<'a> {
    fn new(
        method: Method,
        path: &'a str,
        headers: Vec<(&'a str, &'a str)>,
        body: &'a [u8],
    ) -> Self {
        Self {
            method,
            path,
            headers,
            body,
            status: StatusCode::OK,
            code: "",
        }
    }
    fn wants(self, status: StatusCode, code: &'a str) -> Self {
        Self {
            status,
            code,
            ..self
        }
    }
}

#[tokio::test]
async fn every_rejection_is_a_json_error_with_a_message() {
    let app = spawn_app().await;
    let bearer = format!("Bearer {API_KEY}");
    let auth = [("authorization", bearer.as_str())];
    let json = ("content-type", "application/json");
    let sig = format!(
        "sha256={}",
        onomancer_gateway::signature::hmac_sha256_hex(GITHUB_SECRET, b"a=1")
    );
    let get = |path, headers| Case::new(Method::GET, path, headers, b"");
    let post = |path, headers, body| Case::new(Method::POST, path, headers, body);
    let form = ("content-type", "application/x-www-form-urlencoded");
    let cases = [
        get("/nope", vec![]).wants(StatusCode::NOT_FOUND, "not_found"),
        get("/webhooks/github/acme", vec![])
            .wants(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
        Case::new(Method::DELETE, "/healthz", vec![], b"")
            .wants(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
        post("/webhooks/github/%FF%FE", vec![], b"{}")
            .wants(StatusCode::BAD_REQUEST, "bad_request"),
        get("/v1/jobs/%C3%28", auth.to_vec()).wants(StatusCode::BAD_REQUEST, "bad_request"),
        get("/v1/decisions?limit=x", auth.to_vec()).wants(StatusCode::BAD_REQUEST, "bad_request"),
        get("/v1/usage?from=2026-01-01&from=2026-02-01", auth.to_vec())
            .wants(StatusCode::BAD_REQUEST, "bad_request"),
        get("/v1/usage", vec![]).wants(StatusCode::UNAUTHORIZED, "unauthorized"),
        post("/webhooks/github/nobody", vec![], b"{}")
            .wants(StatusCode::NOT_FOUND, "unknown_tenant"),
        post("/v1/transforms", auth.to_vec(), br#"{"text":"x"}"#)
            .wants(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
        post(
            "/v1/transforms",
            vec![auth[0], ("content-type", "text/plain")],
            br#"{"text":"x"}"#,
        )
        .wants(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
        post("/v1/transforms", vec![auth[0], json], b"{")
            .wants(StatusCode::BAD_REQUEST, "bad_request"),
        post(
            "/webhooks/github/acme",
            vec![("x-hub-signature-256", &sig), form],
            b"a=1",
        )
        .wants(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
    ];
    for c in cases {
        let (method, path) = (c.method.clone(), c.path);
        let got = error_of(&app, c.method, c.path, &c.headers, c.body, c.status).await;
        assert_eq!(got, c.code, "{method} {path}");
    }
    let big = vec![b' '; 1024 * 1024 + 1];
    assert_eq!(
        error_of(
            &app,
            Method::POST,
            "/v1/transforms",
            &[auth[0], json],
            &big,
            StatusCode::PAYLOAD_TOO_LARGE
        )
        .await,
        "payload_too_large"
    );
    assert!(app.all_jobs("acme").await.is_empty());
}

#[tokio::test]
async fn a_wrong_method_names_the_allowed_ones() {
    let app = spawn_app().await;
    let resp = app
        .client
        .get(format!("{}/webhooks/linear/acme", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(resp.headers()["allow"], "POST");
}
