//! A local fake of the Google endpoints the project uses: the OAuth token endpoint (verifying the
//! service-account JWT's signature and claims), Drive `files.list` (evaluating the `q` forms the
//! client sends), `files.create`, `files.export`, and Docs `documents.batchUpdate`, over an
//! in-memory store that knows Shared Drives from My Drive, so "service accounts own no storage"
//! answers as Google does. A test RSA key ships in `testkit/fixtures/`.

mod query;

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde_json::{json, Value};

pub use query::{parse_query, Clause};

/// PEM (PKCS#8) private key of the test service account.
pub const TEST_PRIVATE_KEY_PEM: &str = include_str!("../fixtures/google-sa-test-key.pem");
/// PEM public key matching [`TEST_PRIVATE_KEY_PEM`]; the fake verifies grants with it.
pub const TEST_PUBLIC_KEY_PEM: &str = include_str!("../fixtures/google-sa-test-key.pub.pem");
/// The test service account's email.
pub const TEST_SERVICE_ACCOUNT: &str = "onomancer-test@onomancer-test.iam.gserviceaccount.com";

/// A file in the fake Drive.
#[derive(Clone, Debug, PartialEq)]
pub struct FakeFile {
    /// File id.
    pub id: String,
    /// Name.
    pub name: String,
    /// MIME type.
    pub mime_type: String,
    /// Parent folder ids.
    pub parents: Vec<String>,
    /// `appProperties`.
    pub app_properties: BTreeMap<String, String>,
    /// Document text (documents only).
    pub text: String,
    /// True when the file lives in a Shared Drive.
    pub in_shared_drive: bool,
}

/// One request the fake received (tokens are not recorded).
#[derive(Clone, Debug)]
pub struct GoogleRequest {
    /// HTTP method.
    pub method: String,
    /// Path and query.
    pub uri: String,
}

struct ScriptedError {
    /// Only requests whose path and query contain this; any request when `None`.
    on: Option<String>,
    status: u16,
    reason: String,
    message: String,
}

#[derive(Default)]
struct FakeState {
    files: Vec<FakeFile>,
    requests: Vec<GoogleRequest>,
    issued: Vec<String>,
    grants: usize,
    expires_in: u64,
    scripted: VecDeque<ScriptedError>,
    next_id: u64,
    token_uri: String,
}

type Shared = Arc<Mutex<FakeState>>;

/// The running fake; stops when dropped.
pub struct GoogleFake {
    origin: String,
    state: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for GoogleFake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl GoogleFake {
    /// Starts the fake on 127.0.0.1 on a free port.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the Google fake");
        let origin = format!("http://{}", listener.local_addr().expect("local addr"));
        let state: Shared = Arc::new(Mutex::new(FakeState {
            expires_in: 3599,
            token_uri: format!("{origin}/token"),
            ..FakeState::default()
        }));
        let app = Router::new()
            .route("/token", post(token))
            .route("/drive/v3/files", get(list_files).post(create_file))
            .route("/drive/v3/files/{id}/export", get(export_file))
            .route("/v1/documents/{target}", post(batch_update))
            .with_state(state.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .await
                .expect("Google fake serves");
        });
        Self {
            origin,
            state,
            task,
        }
    }

    /// The origin every endpoint is served at (`GoogleConfig::at_origin`).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The token endpoint URL (the grant's `aud`).
    pub fn token_uri(&self) -> String {
        format!("{}/token", self.origin)
    }

    /// A service-account JSON key file for the test account, pointing at this fake.
    pub fn service_account_json(&self) -> String {
        json!({
            "type": "service_account",
            "project_id": "onomancer-test",
            "private_key_id": "0123456789abcdef",
            "private_key": TEST_PRIVATE_KEY_PEM,
            "client_email": TEST_SERVICE_ACCOUNT,
            "client_id": "100000000000000000001",
            "token_uri": self.token_uri(),
        })
        .to_string()
    }

    fn add(
        &self,
        name: &str,
        mime: &str,
        parents: Vec<String>,
        shared: bool,
        text: &str,
    ) -> String {
        let mut s = self.state.lock().unwrap();
        let id = next_id(&mut s);
        s.files.push(FakeFile {
            id: id.clone(),
            name: name.to_owned(),
            mime_type: mime.to_owned(),
            parents,
            app_properties: BTreeMap::new(),
            text: text.to_owned(),
            in_shared_drive: shared,
        });
        id
    }

    /// A folder at the top of a Shared Drive shared with the service account (`folderIds.root`).
    pub fn add_shared_drive_folder(&self, name: &str) -> String {
        self.add(name, FOLDER, vec!["0AShared".into()], true, "")
    }

    /// A folder in a user's My Drive shared with the service account (no Shared Drive): creating
    /// files in it fails with `storageQuotaExceeded`, as for real service accounts.
    pub fn add_my_drive_folder(&self, name: &str) -> String {
        self.add(name, FOLDER, vec!["root".into()], false, "")
    }

    /// A Google Doc with `text`, readable by the service account.
    pub fn add_document(&self, parent: &str, name: &str, text: &str) -> String {
        self.add(name, DOC, vec![parent.to_owned()], true, text)
    }

    /// Every file.
    pub fn files(&self) -> Vec<FakeFile> {
        self.state.lock().unwrap().files.clone()
    }

    /// Every request except the token grants' bodies.
    pub fn requests(&self) -> Vec<GoogleRequest> {
        self.state.lock().unwrap().requests.clone()
    }

    /// How many grants the token endpoint accepted.
    pub fn grants(&self) -> usize {
        self.state.lock().unwrap().grants
    }

    /// Invalidates every issued access token (the next API call gets 401).
    pub fn revoke_tokens(&self) {
        self.state.lock().unwrap().issued.clear();
    }

    /// The next API call (not the token endpoint) answers `status` with Google's error body.
    pub fn script_error(&self, status: u16, reason: &str, message: &str) {
        self.push_script(None, status, reason, message);
    }

    /// The next API call whose path or query contains `uri_fragment` (e.g. `:batchUpdate`)
    /// answers `status` with Google's error body.
    pub fn script_error_for(&self, uri_fragment: &str, status: u16, reason: &str, message: &str) {
        self.push_script(Some(uri_fragment.to_owned()), status, reason, message);
    }

    fn push_script(&self, on: Option<String>, status: u16, reason: &str, message: &str) {
        self.state
            .lock()
            .unwrap()
            .scripted
            .push_back(ScriptedError {
                on,
                status,
                reason: reason.to_owned(),
                message: message.to_owned(),
            });
    }
}

const FOLDER: &str = "application/vnd.google-apps.folder";
const DOC: &str = "application/vnd.google-apps.document";

fn next_id(s: &mut FakeState) -> String {
    s.next_id += 1;
    format!("1fake{:08}", s.next_id)
}

fn google_error(status: u16, reason: &str, message: &str) -> Response {
    let body = json!({"error": {"code": status, "message": message,
        "errors": [{"message": message, "domain": "global", "reason": reason}]}});
    (StatusCode::from_u16(status).expect("status"), Json(body)).into_response()
}

/// Records the request, checks the bearer token, and pops a scripted error.
fn admit(state: &Shared, uri: &Uri, method: &str, headers: &HeaderMap) -> Option<Response> {
    let mut s = state.lock().unwrap();
    s.requests.push(GoogleRequest {
        method: method.to_owned(),
        uri: uri.to_string(),
    });
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if !token.is_some_and(|t| s.issued.iter().any(|i| i == t)) {
        return Some(google_error(
            401,
            "authError",
            "Request had invalid authentication credentials.",
        ));
    }
    let uri = uri.to_string();
    let position = s
        .scripted
        .iter()
        .position(|e| e.on.as_ref().is_none_or(|frag| uri.contains(frag.as_str())))?;
    let e = s.scripted.remove(position)?;
    Some(google_error(e.status, &e.reason, &e.message))
}

mod handlers;
use handlers::{batch_update, create_file, export_file, list_files, token};
