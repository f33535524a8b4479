//! Atlas conventions every endpoint follows, observed through the real binary.

mod common;

use common::{Server, V2};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn version_header_is_required_and_resolved() {
    let s = Server::start();
    let c = s.client();

    let ok = c.get("/api/atlas/v2/groups").await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(ok.content_type(), "application/vnd.atlas.2023-01-01+json;charset=utf-8");
    assert_eq!(ok.json(), json!({"links": ok.json()["links"], "results": [], "totalCount": 0}));

    for accept in [
        "",
        "application/json",
        "*/*",
        "application/vnd.atlas.2022-12-31+json",
        "application/vnd.atlas.2023-02-30+json",
        "application/vnd.atlas.preview+json",
    ] {
        let r = c.clone().with_accept(accept).get("/api/atlas/v2/groups").await;
        assert_eq!(r.status, StatusCode::NOT_ACCEPTABLE, "Accept: {accept}");
        assert_eq!(r.error_code(), "INVALID_VERSION_DATE");
        assert_eq!(r.content_type(), "application/json");
    }

    // The product page's later calls name newer dates; they resolve to 2023-01-01.
    for date in ["2024-10-23", "2024-11-13"] {
        let r = c.clone().with_accept(&format!("application/vnd.atlas.{date}+json")).get("/api/atlas/v2/groups").await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.content_type(), "application/vnd.atlas.2023-01-01+json;charset=utf-8");
    }

    // v1.0, as the page's first curl call, answers plain JSON without a version.
    let v1 = c.clone().with_accept("application/json").get("/api/atlas/v1.0/groups?pretty=true&envelope=true").await;
    assert_eq!(v1.status, StatusCode::OK);
    assert_eq!(v1.content_type(), "application/json");
    assert_eq!(v1.json()["status"], 200);
}

#[tokio::test]
async fn errors_have_the_atlas_shape_everywhere() {
    let s = Server::start();
    let c = s.client();
    let org = s.org_id();

    let r = c.get("/api/atlas/v2/no/such/path").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let body = r.json();
    assert_eq!(body["errorCode"], "RESOURCE_NOT_FOUND");
    assert_eq!(body["error"], 404);
    assert_eq!(body["reason"], "Not Found");
    assert!(body["detail"].is_string() && body["parameters"].is_array());

    let r = c.request(Method::PUT, "/api/atlas/v2/groups", None).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.json()["error"], 405);

    let r = c.post("/api/atlas/v2/groups", &json!({"name": "p", "orgId": org, "nmae": "typo"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.error_code(), "INVALID_ATTRIBUTE");
    assert_eq!(r.json()["parameters"], json!(["nmae"]));

    let raw = c.request(Method::POST, "/api/atlas/v2/groups", Some(&json!("{not json"))).await;
    assert_eq!(raw.status, StatusCode::BAD_REQUEST);

    let r = c.post("/api/atlas/v2/groups", &json!({"orgId": org})).await;
    assert_eq!(r.error_code(), "MISSING_ATTRIBUTE");

    let r = c.get("/api/atlas/v2/groups/not-an-id").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.error_code(), "INVALID_PATH_PARAMETER");

    let r = c.get("/api/atlas/v2/groups/0123456789abcdef01234567").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.error_code(), "GROUP_NOT_FOUND");

    let r = c.get("/api/atlas/v2/groups?itemsPerPage=501").await;
    assert_eq!(r.error_code(), "INVALID_QUERY_PARAMETER");
    let r = c.get("/api/atlas/v2/groups?envelope=maybe").await;
    assert_eq!(r.error_code(), "INVALID_QUERY_PARAMETER");

    // Nothing above created anything.
    assert_eq!(c.get("/api/atlas/v2/groups").await.json()["totalCount"], 0);
}

#[tokio::test]
async fn malformed_json_is_refused() {
    let s = Server::start();
    let c = s.client();
    let http = reqwest::Client::new();
    let first = http
        .post(format!("{}/api/atlas/v2/groups", s.url))
        .header("Accept", V2)
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    let ch = common::parse_challenge_strict(first.headers()["www-authenticate"].to_str().unwrap()).unwrap();
    let auth = common::authorization(&ch, "MD5", &c.user, &c.pass, "POST", "/api/atlas/v2/groups", 1);
    let r = http
        .post(format!("{}/api/atlas/v2/groups", s.url))
        .header("Accept", V2)
        .header("Authorization", auth)
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["errorCode"], "MALFORMED_JSON");
}

#[tokio::test]
async fn envelope_pretty_trailing_slash_and_question_mark() {
    let s = Server::start();
    let c = s.client();
    let created = c.post("/api/atlas/v2/groups/", &json!({"name": "env", "orgId": s.org_id()})).await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.text);
    let id = created.json()["id"].as_str().unwrap().to_owned();

    let r = c.get(&format!("/api/atlas/v2/groups/{id}?envelope=true")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["status"], 200);
    assert_eq!(r.json()["content"]["id"], id.as_str());

    let r = c.get("/api/atlas/v2/groups?envelope=true").await;
    assert_eq!(r.json()["status"], 200);
    assert_eq!(r.json()["results"][0]["id"], id.as_str());

    let r = c.get(&format!("/api/atlas/v2/groups/{id}?pretty=true")).await;
    assert!(r.text.contains("\n  \"clusterCount\""), "{}", r.text);
    let r = c.get(&format!("/api/atlas/v2/groups/{id}")).await;
    assert!(!r.text.contains('\n'));

    let r = c.get(&format!("/api/atlas/v2/groups/{id}?")).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = c.get(&format!("/api/atlas/v2/groups/{id}/")).await;
    assert_eq!(r.status, StatusCode::OK);

    let r = c.get("/api/atlas/v2/groups/0123456789abcdef01234567?envelope=true").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json()["status"], 404);
    assert_eq!(r.json()["content"]["errorCode"], "GROUP_NOT_FOUND");
}

#[tokio::test]
async fn pagination_over_more_than_500_projects() {
    let s = Server::start();
    let c = s.client();
    let org = s.org_id();
    let total = 503;
    let mut tasks = tokio::task::JoinSet::new();
    let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(8));
    for i in 0..total {
        let (c, org, sem) = (c.clone(), org.clone(), sem.clone());
        tasks.spawn(async move {
            let _p = sem.acquire().await.unwrap();
            let r = c.post("/api/atlas/v2/groups", &json!({"name": format!("p{i:04}"), "orgId": org})).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }

    let p1 = c.get("/api/atlas/v2/groups?itemsPerPage=500").await.json();
    assert_eq!(p1["totalCount"], total);
    assert_eq!(p1["results"].as_array().unwrap().len(), 500);
    let rels: Vec<&str> = p1["links"].as_array().unwrap().iter().map(|l| l["rel"].as_str().unwrap()).collect();
    assert_eq!(rels, ["self", "next"]);
    let next = p1["links"][1]["href"].as_str().unwrap();
    assert!(next.ends_with("/api/atlas/v2/groups?pageNum=2&itemsPerPage=500"), "{next}");

    let p2 = c.get("/api/atlas/v2/groups?itemsPerPage=500&pageNum=2").await.json();
    assert_eq!(p2["results"].as_array().unwrap().len(), 3);
    let rels: Vec<&str> = p2["links"].as_array().unwrap().iter().map(|l| l["rel"].as_str().unwrap()).collect();
    assert_eq!(rels, ["previous", "self"]);

    let mut ids: Vec<String> = p1["results"]
        .as_array()
        .unwrap()
        .iter()
        .chain(p2["results"].as_array().unwrap())
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), total);

    let default = c.get("/api/atlas/v2/groups").await.json();
    assert_eq!(default["results"].as_array().unwrap().len(), 100);
    let beyond = c.get("/api/atlas/v2/groups?pageNum=99").await.json();
    assert_eq!(beyond["results"], json!([]));
    let nocount = c.get("/api/atlas/v2/groups?includeCount=false&itemsPerPage=1").await.json();
    assert!(nocount.get("totalCount").is_none());
}
