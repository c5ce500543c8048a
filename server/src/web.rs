//! The web client at `/`: the files of `web/` and the JavaScript library (`client-js/src`,
//! under `/client/`), embedded in the binary so a plain `cargo run --release` serves a
//! playable page with nothing else on disk and nothing fetched from elsewhere. Debug builds
//! read the same folders from disk at run time (those of the checkout they were built from),
//! so a page edit needs no rebuild.

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use rust_embed::RustEmbed;
use std::sync::OnceLock;

#[derive(RustEmbed)]
#[folder = "../web"]
struct Web;

#[derive(RustEmbed)]
#[folder = "../client-js/src"]
struct Library;

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("png") => "image/png",
        Some("svg") => "image/svg+xml",
        _ => "application/octet-stream",
    }
}

/// The embedded file `path` of folder `F`, with an ETag from its hash so a reload costs a 304;
/// `no-cache` so a new server's files are always checked for.
fn serve<F: RustEmbed>(path: &str, request: &HeaderMap) -> Response {
    // rust-embed keeps to its folder; a path that climbs out is not even looked up.
    let climbs = path.split(['/', '\\']).any(|part| part == "..");
    let Some(file) = (!climbs).then(|| F::get(path)).flatten() else {
        return (StatusCode::NOT_FOUND, "no such file").into_response();
    };
    let tag = format!(
        "\"{}\"",
        file.metadata
            .sha256_hash()
            .iter()
            .take(12)
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(path)),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Ok(value) = HeaderValue::from_str(&tag) {
        headers.insert(header::ETAG, value);
    }
    if request
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == tag.as_bytes())
    {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    (headers, file.data.into_owned()).into_response()
}

pub async fn index(request: HeaderMap) -> Response {
    let mut response = serve::<Web>("index.html", &request);
    if let Some(policy) = page_policy() {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, policy.clone());
    }
    response
}

/// The page's Content-Security-Policy: scripts, styles and connections only from this server,
/// plus the page's one inline script (its import map) by its hash, and no framing. A script
/// injected into the page (a player's name in the wrong place) would not run. None when the
/// page has no import map to hash (it would not work anyway). Hashed once per process: a debug
/// build serving an edited import map needs a restart.
fn page_policy() -> Option<&'static HeaderValue> {
    static POLICY: OnceLock<Option<HeaderValue>> = OnceLock::new();
    POLICY
        .get_or_init(|| {
            let page = Web::get("index.html")?;
            let map = import_map(std::str::from_utf8(&page.data).ok()?)?;
            let hash = ring::digest::digest(&ring::digest::SHA256, map.as_bytes());
            let hash = base64::engine::general_purpose::STANDARD.encode(hash.as_ref());
            HeaderValue::from_str(&format!(
                "default-src 'self'; script-src 'self' 'sha256-{hash}'; style-src 'self'; \
                 img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
                 frame-ancestors 'none'"
            ))
            .ok()
        })
        .as_ref()
}

/// The text of the page's `<script type="importmap">`, as the browser hashes it.
fn import_map(page: &str) -> Option<&str> {
    const OPEN: &str = "<script type=\"importmap\">";
    let start = page.find(OPEN)? + OPEN.len();
    let len = page[start..].find("</script>")?;
    Some(&page[start..start + len])
}

/// A file of `web/` by the request's path (the routes name which may be asked for).
pub async fn page_file(uri: Uri, request: HeaderMap) -> Response {
    let path = uri.path().trim_start_matches('/');
    serve::<Web>(path, &request)
}

pub async fn library_file(Path(file): Path<String>, request: HeaderMap) -> Response {
    serve::<Library>(&file, &request)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_policy_hashes_the_pages_import_map() {
        let page = "<head><script type=\"importmap\">{\"imports\": {}}</script></head>";
        assert_eq!(super::import_map(page), Some("{\"imports\": {}}"));
        assert_eq!(super::import_map("<head></head>"), None);
        let policy = super::page_policy().expect("web/index.html has an import map");
        assert!(
            policy
                .to_str()
                .unwrap()
                .contains("script-src 'self' 'sha256-")
        );
    }
}
