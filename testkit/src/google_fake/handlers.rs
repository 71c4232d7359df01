//! The fake's HTTP handlers, one per Google endpoint.

use std::collections::{BTreeMap, HashMap};
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use super::query::{parse_query, Clause};
use super::*;

#[derive(Deserialize)]
struct Grant {
    iss: String,
    scope: String,
    aud: String,
    iat: u64,
    exp: u64,
}

fn token_error(error: &str, description: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

/// `POST /token`: verifies the JWT grant as Google does and issues an access token.
pub(super) async fn token(
    State(state): State<Shared>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if form.get("grant_type").map(String::as_str)
        != Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
    {
        return token_error("unsupported_grant_type", "Invalid grant_type");
    }
    let Some(assertion) = form.get("assertion") else {
        return token_error("invalid_request", "Missing required parameter: assertion");
    };
    let token_uri = state.lock().unwrap().token_uri.clone();
    let key = DecodingKey::from_rsa_pem(TEST_PUBLIC_KEY_PEM.as_bytes()).expect("test public key");
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[&token_uri]);
    validation.set_required_spec_claims(&["exp", "iat", "aud", "iss"]);
    let claims = match jsonwebtoken::decode::<Grant>(assertion, &key, &validation) {
        Ok(data) => data.claims,
        Err(e) => {
            return token_error(
                "invalid_grant",
                &format!("Invalid JWT Signature or claims: {e}"),
            )
        }
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    if claims.exp <= claims.iat || claims.exp - claims.iat > 3600 {
        return token_error(
            "invalid_grant",
            "Invalid JWT: Token must be a short-lived token (60 minutes)",
        );
    }
    if claims.iat > now + 300 || claims.iat + 3600 < now {
        return token_error("invalid_grant", "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values");
    }
    if claims.iss != TEST_SERVICE_ACCOUNT || claims.aud != token_uri {
        return token_error("invalid_grant", "Invalid issuer or audience");
    }
    let scopes: Vec<&str> = claims.scope.split(' ').collect();
    if !scopes
        .iter()
        .all(|s| s.starts_with("https://www.googleapis.com/auth/"))
        || scopes.is_empty()
    {
        return token_error(
            "invalid_scope",
            "Invalid OAuth scope or ID token audience provided.",
        );
    }
    let mut s = state.lock().unwrap();
    s.grants += 1;
    let access = format!("ya29.fake-{}-{}", s.grants, uuid::Uuid::new_v4().simple());
    s.issued.push(access.clone());
    let expires_in = s.expires_in;
    Json(json!({"access_token": access, "expires_in": expires_in, "token_type": "Bearer"}))
        .into_response()
}

fn file_json(f: &FakeFile) -> Value {
    json!({"kind": "drive#file", "id": f.id, "name": f.name, "mimeType": f.mime_type,
           "parents": f.parents, "appProperties": f.app_properties})
}

fn matches(f: &FakeFile, clauses: &[Clause]) -> bool {
    clauses.iter().all(|c| match c {
        Clause::Name(n) => &f.name == n,
        Clause::InParents(p) => f.parents.contains(p),
        Clause::MimeType(m) => &f.mime_type == m,
        Clause::Trashed(t) => !*t,
        Clause::AppProperty(k, v) => f.app_properties.get(k) == Some(v),
    })
}

fn all_drives(params: &HashMap<String, String>) -> bool {
    params.get("supportsAllDrives").map(String::as_str) == Some("true")
}

/// `GET /drive/v3/files`: `files.list` evaluating `q`.
pub(super) async fn list_files(
    State(state): State<Shared>,
    uri: Uri,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    if let Some(r) = admit(&state, &uri, "GET", &headers) {
        return r;
    }
    let clauses = match parse_query(params.get("q").map(String::as_str).unwrap_or("")) {
        Ok(c) => c,
        Err(e) => return google_error(400, "invalid", &format!("Invalid Value: {e}")),
    };
    let include_shared = all_drives(&params)
        && params.get("includeItemsFromAllDrives").map(String::as_str) == Some("true");
    let s = state.lock().unwrap();
    let files: Vec<Value> = s
        .files
        .iter()
        .filter(|f| include_shared || !f.in_shared_drive)
        .filter(|f| matches(f, &clauses))
        .map(file_json)
        .collect();
    Json(json!({"kind": "drive#fileList", "incompleteSearch": false, "files": files}))
        .into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateBody {
    name: String,
    mime_type: String,
    #[serde(default)]
    parents: Vec<String>,
    #[serde(default)]
    app_properties: BTreeMap<String, String>,
}

/// `POST /drive/v3/files`: `files.create` (metadata only).
pub(super) async fn create_file(
    State(state): State<Shared>,
    uri: Uri,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    if let Some(r) = admit(&state, &uri, "POST", &headers) {
        return r;
    }
    let Ok(body) = serde_json::from_slice::<CreateBody>(&body) else {
        return google_error(400, "badRequest", "Invalid JSON payload received.");
    };
    let mut s = state.lock().unwrap();
    let Some(parent) = body.parents.first() else {
        // A service account's own My Drive has no quota.
        return google_error(403, "storageQuotaExceeded", "Service Accounts do not have storage quota. Leverage shared drives (https://developers.google.com/workspace/drive/api/guides/about-shareddrives), or use OAuth delegation instead.");
    };
    let Some(parent_file) = s.files.iter().find(|f| &f.id == parent).cloned() else {
        return google_error(404, "notFound", &format!("File not found: {parent}."));
    };
    if parent_file.in_shared_drive && !all_drives(&params) {
        return google_error(404, "notFound", &format!("File not found: {parent}."));
    }
    if !parent_file.in_shared_drive {
        return google_error(403, "storageQuotaExceeded", "Service Accounts do not have storage quota. Leverage shared drives (https://developers.google.com/workspace/drive/api/guides/about-shareddrives), or use OAuth delegation instead.");
    }
    let id = next_id(&mut s);
    let file = FakeFile {
        id,
        name: body.name,
        mime_type: body.mime_type,
        parents: body.parents,
        app_properties: body.app_properties,
        text: String::new(),
        in_shared_drive: true,
    };
    let out = file_json(&file);
    s.files.push(file);
    Json(out).into_response()
}

/// `GET /drive/v3/files/{id}/export?mimeType=text/plain|text/markdown`.
pub(super) async fn export_file(
    State(state): State<Shared>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    if let Some(r) = admit(&state, &uri, "GET", &headers) {
        return r;
    }
    let mime = params.get("mimeType").cloned().unwrap_or_default();
    if mime != "text/plain" && mime != "text/markdown" {
        return google_error(
            400,
            "badRequest",
            "The requested conversion is not supported.",
        );
    }
    let s = state.lock().unwrap();
    let Some(file) = s.files.iter().find(|f| f.id == id) else {
        return google_error(404, "notFound", &format!("File not found: {id}."));
    };
    if file.mime_type != DOC {
        return google_error(
            403,
            "fileNotExportable",
            "Export only supports Docs Editors files.",
        );
    }
    if file.text.len() > 10 * 1024 * 1024 {
        return google_error(
            403,
            "exportSizeLimitExceeded",
            "This file is too large to be exported.",
        );
    }
    (
        [("content-type", format!("{mime}; charset=utf-8"))],
        file.text.clone(),
    )
        .into_response()
}

/// `POST /v1/documents/{id}:batchUpdate`: applies `insertText` requests in order.
pub(super) async fn batch_update(
    State(state): State<Shared>,
    Path(target): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Some(r) = admit(&state, &uri, "POST", &headers) {
        return r;
    }
    let Some(id) = target.strip_suffix(":batchUpdate") else {
        return google_error(404, "notFound", "Method not found.");
    };
    let mut s = state.lock().unwrap();
    let Some(doc) = s
        .files
        .iter_mut()
        .find(|f| f.id == id && f.mime_type == DOC)
    else {
        return google_error(
            404,
            "notFound",
            &format!("Requested entity was not found: {id}"),
        );
    };
    let requests = body["requests"].as_array().cloned().unwrap_or_default();
    let mut text = doc.text.clone();
    for r in &requests {
        let Some(insert) = r.get("insertText") else {
            return google_error(
                400,
                "badRequest",
                "Only insertText is supported by the fake.",
            );
        };
        let index = insert["location"]["index"].as_u64().unwrap_or(0) as usize;
        if index < 1 {
            return google_error(
                400,
                "badRequest",
                "Invalid requests[0].insertText: Index 0 must be greater than 0.",
            );
        }
        let at: usize = text.chars().take(index - 1).map(char::len_utf8).sum();
        text.insert_str(at, insert["text"].as_str().unwrap_or(""));
    }
    doc.text = text; // applied atomically: all requests or none
    let replies: Vec<Value> = requests.iter().map(|_| json!({})).collect();
    Json(json!({"documentId": id, "replies": replies,
                "writeControl": {"requiredRevisionId": format!("rev-{}", uuid::Uuid::new_v4().simple())}}))
        .into_response()
}
