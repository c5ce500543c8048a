//! Which web pages may talk to the HTTP port. A browser names the page's origin in an `Origin`
//! header on cross-origin requests and on every websocket upgrade; websockets are not covered
//! by CORS, so without a check any site a player visits could open a socket to this server in
//! the player's name. By default only pages this server serves (same host) get in;
//! `--cors-origin` adds others (`*` for any). Clients that are not browsers send no `Origin`
//! and are not affected. Allowed cross-origin requests get the CORS headers a browser needs to
//! read the replies (Socket.IO's polling, `/api/*`).

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// The origins allowed besides the server's own.
#[derive(Clone, Debug, Default)]
pub struct Origins {
    any: bool,
    listed: Vec<String>,
}

impl Origins {
    /// From `--cors-origin` values: `*`, or origins such as `https://game.example`.
    pub fn new(allowed: &[String]) -> Origins {
        Origins {
            any: allowed.iter().any(|o| o == "*"),
            listed: allowed
                .iter()
                .filter(|o| *o != "*")
                .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
                .collect(),
        }
    }

    /// Whether a page of `origin` may use this server, reached at `host` (its `Host` header).
    pub fn allows(&self, origin: &str, host: Option<&str>) -> bool {
        let origin = origin.to_ascii_lowercase();
        let same = origin
            .split_once("://")
            .is_some_and(|(_, authority)| host.is_some_and(|h| authority.eq_ignore_ascii_case(h)));
        same || self.any || self.listed.contains(&origin)
    }
}

pub async fn check(State(origins): State<Arc<Origins>>, request: Request, next: Next) -> Response {
    let Some(origin) = request.headers().get(header::ORIGIN).cloned() else {
        return next.run(request).await;
    };
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok());
    let allowed = origin.to_str().is_ok_and(|o| origins.allows(o, host));
    if !allowed {
        crate::metrics::origin_refused();
        return (
            StatusCode::FORBIDDEN,
            "this page's origin may not use this server (see --cors-origin)",
        )
            .into_response();
    }
    let preflight = request.method() == Method::OPTIONS;
    let mut response = if preflight {
        StatusCode::NO_CONTENT.into_response()
    } else {
        next.run(request).await
    };
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
        HeaderValue::from_static("true"),
    );
    headers.append(header::VARY, HeaderValue::from_static("origin"));
    if preflight {
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST"),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("content-type"),
        );
        headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::Origins;

    #[test]
    fn the_servers_own_pages_and_listed_origins_get_in() {
        let none = Origins::new(&[]);
        assert!(none.allows("http://127.0.0.1:8080", Some("127.0.0.1:8080")));
        assert!(none.allows("https://Play.Example", Some("play.example")));
        assert!(!none.allows("http://127.0.0.1:9999", Some("127.0.0.1:8080")));
        assert!(!none.allows("http://evil.example", Some("127.0.0.1:8080")));
        assert!(!none.allows("null", Some("127.0.0.1:8080")));
        assert!(!none.allows("http://127.0.0.1:8080", None));
        let listed = Origins::new(&["https://game.example/".into()]);
        assert!(listed.allows("https://game.example", Some("api.example")));
        assert!(!listed.allows("https://other.example", Some("api.example")));
        assert!(Origins::new(&["*".into()]).allows("http://anything", None));
    }
}
