//! The web pages a browser loads: the dashboard at `/`, GraphiQL at
//! `/graphiql`, their assets, all from the binary and nothing from elsewhere.

use reqwest::StatusCode;
use reqwest::header::{CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE, LOCATION};
use serde_json::json;

use crate::helpers::{TestApp, spawn_app, spawn_app_with};

fn header(response: &reqwest::Response, name: reqwest::header::HeaderName) -> String {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// The `/assets/...` files a page names in its `src` and `href` attributes.
fn assets_of(html: &str) -> Vec<String> {
    let mut found = Vec::new();
    for attr in ["src=\"", "href=\""] {
        for (at, _) in html.match_indices(attr) {
            let rest = &html[at + attr.len()..];
            let value = &rest[..rest.find('"').unwrap_or(0)];
            if value.starts_with("/assets/") {
                found.push(value.to_owned());
            }
        }
    }
    found
}

/// Loads a page and every asset it names; returns the page's text.
async fn page(app: &TestApp, path: &str) -> String {
    let response = app.client.get(app.url(path)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    assert!(
        header(&response, CONTENT_TYPE).starts_with("text/html"),
        "{path}"
    );
    assert_eq!(header(&response, CACHE_CONTROL), "no-cache", "{path}");
    let html = response.text().await.unwrap();
    for attr in ["src=\"http", "href=\"http", "src=\"//", "href=\"//"] {
        assert!(
            !html.contains(attr),
            "{path} loads from another host: {html}"
        );
    }
    let assets = assets_of(&html);
    assert!(assets.iter().any(|a| a.ends_with(".js")), "{path}: {html}");
    for asset in assets {
        let response = app.client.get(app.url(&asset)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{asset}");
        let cache = header(&response, CACHE_CONTROL);
        assert!(cache.contains("immutable"), "{asset}: {cache}");
        let ct = header(&response, CONTENT_TYPE);
        let expected = if asset.ends_with(".css") {
            "text/css"
        } else {
            "javascript"
        };
        assert!(ct.contains(expected), "{asset}: {ct}");
    }
    html
}

#[tokio::test]
async fn the_dashboard_and_graphiql_come_from_the_binary() {
    let app = spawn_app().await;
    let dashboard = page(&app, "/").await;
    assert!(dashboard.contains("bulkwatch"), "{dashboard}");
    let graphiql = page(&app, "/graphiql").await;
    assert!(graphiql.contains("GraphiQL"), "{graphiql}");

    // Text assets travel compressed to a client that takes gzip.
    let script = assets_of(&graphiql)
        .into_iter()
        .find(|a| a.ends_with(".js"))
        .unwrap();
    let response = app
        .client
        .get(app.url(&script))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&response, CONTENT_ENCODING), "gzip");

    let missing = app
        .client
        .get(app.url("/assets/nope.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);

    // GraphiQL's own introspection works without a key.
    let data = app
        .data(
            "{ __schema { queryType { name } mutationType { name } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        data["__schema"],
        json!({ "queryType": { "name": "Query" }, "mutationType": { "name": "Mutation" } })
    );
}

#[tokio::test]
async fn a_browser_opening_graphql_is_sent_to_the_dashboard() {
    let app = spawn_app().await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = client
        .get(app.url("/graphql"))
        .header("accept", "text/html,application/xhtml+xml")
        .send()
        .await
        .unwrap();
    assert!(response.status().is_redirection(), "{}", response.status());
    assert_eq!(header(&response, LOCATION), "/");

    // A client asking for JSON still gets the GraphQL answer.
    let response = client
        .get(app.url("/graphql?query=%7B__typename%7D"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn pages_and_introspection_can_be_turned_off() {
    let app = spawn_app_with(|config| {
        config.graphiql = false;
        config.dashboard = false;
        config.introspection = false;
    })
    .await;
    for path in ["/", "/graphiql", "/assets/nope.js"] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        let html = response.text().await.unwrap();
        assert!(!html.to_lowercase().contains("graphiql"), "{html}");
    }

    let body = app
        .post("{ __schema { queryType { name } } }", json!({}))
        .await;
    assert!(
        body["errors"].as_array().is_some_and(|e| !e.is_empty())
            || body["data"]["__schema"].is_null(),
        "introspection is off: {body:#}"
    );
    let body = app
        .post("{ __type(name: \"BulkTask\") { name } }", json!({}))
        .await;
    assert!(
        body["errors"].as_array().is_some_and(|e| !e.is_empty())
            || body["data"]["__type"].is_null(),
        "{body:#}"
    );
    // Ordinary queries still run.
    assert_eq!(app.task_count().await, 0);
}
