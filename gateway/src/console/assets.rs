//! The page itself: plain HTML, CSS and JavaScript (native ES modules) built
//! into the binary (no build step), served with a strict
//! Content-Security-Policy (no inline script, nothing from other origins).
//!
//! Every file under `assets/` but `index.html` (served at `/`) is one entry of
//! [`ASSETS`], at `/assets/` and its path there; the unit tests below check that
//! the table and the directory agree and that every relative import of the
//! JavaScript is served.

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

const INDEX: &str = include_str!("assets/index.html");

const CSP: &str = "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; \
script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; \
form-action 'self'; frame-ancestors 'none'";

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// One file of the page.
#[derive(Debug, Clone, Copy)]
pub struct Asset {
    /// The URL path: `/assets/` and the file's path under `assets/`.
    pub path: &'static str,
    /// The `Content-Type` it is served with.
    pub content_type: &'static str,
    /// The file (built in with `include_str!`).
    pub body: &'static str,
}

/// An [`Asset`] from its path under `assets/`.
macro_rules! asset {
    ($file:literal, $content_type:expr) => {
        Asset {
            path: concat!("/assets/", $file),
            content_type: $content_type,
            body: include_str!(concat!("assets/", $file)),
        }
    };
}

/// Every file of the page but `index.html`.
pub const ASSETS: &[Asset] = &[
    asset!("app.css", CSS),
    // The module the page loads; it imports js/main.js.
    asset!("app.js", JS),
    asset!("js/main.js", JS),
    asset!("js/types.js", JS),
    asset!("js/i18n.js", JS),
    asset!("js/api.js", JS),
    asset!("js/live.js", JS),
    asset!("js/store.js", JS),
    asset!("js/dom.js", JS),
    asset!("js/format.js", JS),
    asset!("js/records.js", JS),
    asset!("js/sound.js", JS),
    asset!("js/views/alarms.js", JS),
    asset!("js/views/events.js", JS),
    asset!("js/views/doors.js", JS),
    asset!("js/views/roster.js", JS),
    asset!("js/views/users.js", JS),
];

/// `GET /`: the live page (it asks for a login itself).
pub async fn index() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        INDEX,
    )
}

/// `GET /` and every entry of [`ASSETS`] (open to all: no session needed).
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    ASSETS
        .iter()
        .fold(Router::new().route("/", get(index)), |router, asset| {
            let (content_type, body) = (asset.content_type, asset.body);
            router.route(
                asset.path,
                get(move || async move {
                    (
                        [
                            (header::CONTENT_TYPE, content_type),
                            (header::CACHE_CONTROL, "no-cache"),
                        ],
                        body,
                    )
                }),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use std::collections::BTreeSet;
    use std::path::{Path, PathBuf};
    use tower::ServiceExt;

    fn root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("src/console/assets")
    }

    /// Every file under `dir`, as paths relative to `root` with `/`.
    fn walk(root: &Path, dir: &Path, out: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).unwrap();
                let parts: Vec<&str> = rel
                    .components()
                    .map(|c| c.as_os_str().to_str().unwrap())
                    .collect();
                out.insert(parts.join("/"));
            }
        }
    }

    fn asset(path: &str) -> Option<&'static Asset> {
        ASSETS.iter().find(|a| a.path == path)
    }

    #[test]
    fn every_file_is_served_and_every_asset_is_a_file() {
        let root = root();
        let mut files = BTreeSet::new();
        walk(&root, &root, &mut files);
        assert!(files.remove("index.html"), "assets/index.html is missing");
        let on_disk: BTreeSet<String> = files.iter().map(|f| format!("/assets/{f}")).collect();
        let served: BTreeSet<String> = ASSETS.iter().map(|a| a.path.to_string()).collect();
        assert_eq!(served.len(), ASSETS.len(), "a path is twice in ASSETS");
        let unserved: Vec<&String> = on_disk.difference(&served).collect();
        assert!(
            unserved.is_empty(),
            "files under assets/ that ASSETS lacks: {unserved:?}"
        );
        let missing: Vec<&String> = served.difference(&on_disk).collect();
        assert!(
            missing.is_empty(),
            "ASSETS entries without a file: {missing:?}"
        );
        for a in ASSETS {
            let file = root.join(a.path.strip_prefix("/assets/").unwrap());
            assert_eq!(
                std::fs::read_to_string(&file).unwrap(),
                a.body,
                "{} is not the file's content",
                a.path
            );
            let want = if a.path.ends_with(".js") {
                JS
            } else if a.path.ends_with(".css") {
                CSS
            } else {
                panic!("{}: no content type for this kind of file", a.path)
            };
            assert_eq!(a.content_type, want, "{}", a.path);
            if a.path.ends_with(".js") {
                assert!(
                    a.body.starts_with("// @ts-check\n"),
                    "{} does not start with `// @ts-check`",
                    a.path
                );
            }
        }
    }

    /// The module specifiers in `js`: `from '…'`, `import '…'` and
    /// `import('…')` (also those in JSDoc types, which the checker resolves).
    fn specifiers(js: &str) -> Vec<&str> {
        let mut out = Vec::new();
        for open in ["from ", "import ", "import("] {
            for quote in ['\'', '"'] {
                let pattern = format!("{open}{quote}");
                let mut rest = js;
                while let Some(at) = rest.find(&pattern) {
                    rest = &rest[at + pattern.len()..];
                    if let Some(end) = rest.find(quote) {
                        out.push(&rest[..end]);
                    }
                }
            }
        }
        out
    }

    /// `spec` relative to the URL path `from`.
    fn resolve(from: &str, spec: &str) -> String {
        let mut parts: Vec<&str> = from.split('/').collect();
        parts.pop();
        for segment in spec.split('/') {
            match segment {
                "." => {}
                ".." => {
                    parts.pop();
                }
                s => parts.push(s),
            }
        }
        parts.join("/")
    }

    #[test]
    fn every_import_is_served() {
        assert_eq!(
            resolve("/assets/js/views/alarms.js", "../api.js"),
            "/assets/js/api.js"
        );
        assert_eq!(
            resolve("/assets/app.js", "./js/main.js"),
            "/assets/js/main.js"
        );
        let mut imports = 0;
        for a in ASSETS.iter().filter(|a| a.path.ends_with(".js")) {
            for spec in specifiers(a.body) {
                assert!(
                    spec.starts_with("./") || spec.starts_with("../"),
                    "{}: `{spec}` is not a relative import (the page has no import map)",
                    a.path
                );
                let target = resolve(a.path, spec);
                assert!(
                    asset(&target).is_some(),
                    "{}: `{spec}` ({target}) is not in ASSETS",
                    a.path
                );
                imports += 1;
            }
        }
        assert!(imports > 10, "only {imports} imports found");
        // The page loads the entry module and the style sheet from ASSETS.
        assert!(INDEX.contains(r#"<script type="module" src="/assets/app.js"></script>"#));
        for (open, what) in [(r#"src=""#, "src"), (r#"href=""#, "href")] {
            let mut rest = INDEX;
            while let Some(at) = rest.find(open) {
                rest = &rest[at + open.len()..];
                let url = &rest[..rest.find('"').unwrap()];
                assert!(
                    asset(url).is_some(),
                    "index.html: {what} {url} is not in ASSETS"
                );
            }
        }
    }

    #[tokio::test]
    async fn the_router_serves_the_page_and_every_asset() {
        let page = router::<()>()
            .oneshot(Request::get("/").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        assert_eq!(
            page.headers()[header::CONTENT_SECURITY_POLICY]
                .to_str()
                .unwrap(),
            CSP
        );
        for a in ASSETS {
            let r = router::<()>()
                .oneshot(Request::get(a.path).body(Body::empty()).unwrap())
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK, "{}", a.path);
            assert_eq!(
                r.headers()[header::CONTENT_TYPE].to_str().unwrap(),
                a.content_type,
                "{}",
                a.path
            );
            assert_eq!(
                r.headers()[header::CACHE_CONTROL].to_str().unwrap(),
                "no-cache",
                "{}",
                a.path
            );
            let body = axum::body::to_bytes(r.into_body(), usize::MAX)
                .await
                .unwrap();
            assert_eq!(body, a.body.as_bytes(), "{}", a.path);
        }
    }
}
