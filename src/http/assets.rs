//! The dashboard (at `/`) and GraphiQL (at `/graphiql`), from the built
//! front end in `web/dist`, embedded in the binary: nothing is fetched from
//! another host. Hashed assets are cached for good; pages are revalidated.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rust_embed::RustEmbed;
use tower_http::compression::CompressionLayer;

use super::Http;

#[derive(RustEmbed)]
#[folder = "web/dist/"]
struct Web;

/// Content-hashed file names under `assets/` never change their bytes.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const REVALIDATE: &str = "no-cache";

fn file(path: &str, cache: &'static str) -> Response {
    let Some(file) = Web::get(path) else {
        return (
            StatusCode::NOT_FOUND,
            format!(
                "{path} is not in this build; the web pages are built with \
                 `npm ci && npm run build` in web/"
            ),
        )
            .into_response();
    };
    let mime = file.metadata.mimetype().to_owned();
    let mut response = (StatusCode::OK, file.data.into_owned()).into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&mime) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

async fn asset(Path(name): Path<String>) -> Response {
    file(&format!("assets/{name}"), IMMUTABLE)
}

/// The pages that are turned on, and the assets they load.
pub(super) fn routes(dashboard: bool, graphiql: bool) -> Router<Http> {
    let mut router = Router::new();
    if dashboard {
        router = router.route("/", get(|| async { file("index.html", REVALIDATE) }));
    }
    if graphiql {
        router = router.route(
            "/graphiql",
            get(|| async { file("graphiql.html", REVALIDATE) }),
        );
    }
    if dashboard || graphiql {
        router = router.route("/assets/{name}", get(asset));
    }
    // Text assets shrink several times over; gzip is what every browser takes.
    router.layer(CompressionLayer::new().gzip(true))
}
