use huzhu_tests::harness::TestApp;
use huzhu_tests::on_both_backends;
use serde_json::Value;

/// Every item of a list, following cursors.
async fn all_pages(app: &TestApp, path: &str, token: &str, limit: u32) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut url = format!("{path}{sep}limit={limit}");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let (status, page) = app.get(&url, Some(token)).await;
        assert_eq!(status, 200, "{page}");
        let batch = page["items"].as_array().unwrap();
        assert!(batch.len() <= limit as usize);
        items.extend(batch.iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    items
}

async fn a_reviewer_of_one_service_point_gets_404_for_a_member_of_another(app: TestApp) {
    let xincheng = app.login("sp-xincheng").await;
    let saihan = app.login("sp-saihan").await;
    let theirs = all_pages(&app, "/api/v1/members", &saihan, 50).await;
    assert_eq!(
        theirs.len(),
        20,
        "two unit unions of ten under 赛罕区代办点"
    );
    let other_id = theirs[0]["id"].as_str().unwrap();
    let (status, body) = app
        .get(&format!("/api/v1/members/{other_id}"), Some(&xincheng))
        .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "not_found");
    // The same id exists for its own service point.
    let (status, _) = app
        .get(&format!("/api/v1/members/{other_id}"), Some(&saihan))
        .await;
    assert_eq!(status, 200);
    // An id that does not exist at all looks exactly the same.
    let (status, missing) = app
        .get(
            "/api/v1/members/00000000-0000-0000-0000-000000000000",
            Some(&xincheng),
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(missing, body);
}

async fn lists_are_limited_to_the_callers_subtree_whatever_the_filter(app: TestApp) {
    let union = app.login("union-power").await;
    let own = all_pages(&app, "/api/v1/members", &union, 3).await;
    assert_eq!(own.len(), 10);
    assert!(
        own.iter()
            .all(|m| m["organisation"]["name"] == "内蒙古电力（集团）有限责任公司工会")
    );

    // Filtering by another unit's id yields nothing rather than its members.
    let admin = app.login("admin").await;
    let units = all_pages(&app, "/api/v1/organisations?kind=unit_union", &admin, 10).await;
    assert_eq!(units.len(), 4);
    let other = units
        .iter()
        .find(|u| u["name"] != "内蒙古电力（集团）有限责任公司工会")
        .unwrap()["id"]
        .as_str()
        .unwrap();
    let (status, page) = app
        .get(
            &format!("/api/v1/members?organisation={other}"),
            Some(&union),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(page["items"].as_array().unwrap().len(), 0);
    let (status, _) = app
        .get(&format!("/api/v1/organisations/{other}"), Some(&union))
        .await;
    assert_eq!(status, 404);

    // The association sees everything, page by page, without repeats.
    let everyone = all_pages(&app, "/api/v1/members", &admin, 7).await;
    assert_eq!(everyone.len(), 40);
    let mut ids: Vec<&str> = everyone.iter().map(|m| m["id"].as_str().unwrap()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 40);
}

async fn personal_numbers_are_masked_except_for_the_association(app: TestApp) {
    let union = app.login("union-power").await;
    let (_, page) = app.get("/api/v1/members?limit=1", Some(&union)).await;
    let masked = page["items"][0]["id_number"].as_str().unwrap();
    assert!(masked.contains("**********"), "{masked}");
    let phone = page["items"][0]["phone"].as_str().unwrap();
    assert!(phone.contains("****"), "{phone}");

    let association = app.login("association").await;
    let id = page["items"][0]["id"].as_str().unwrap();
    let (_, full) = app
        .get(&format!("/api/v1/members/{id}"), Some(&association))
        .await;
    let number = full["id_number"].as_str().unwrap();
    assert!(!number.contains('*'));
    assert_eq!(&number[..4], &masked[..4]);
    assert_eq!(&number[14..], &masked[14..]);
}

async fn a_member_sees_only_their_own_record(app: TestApp) {
    let admin = app.login("admin").await;
    let (_, page) = app.get("/api/v1/members?limit=2", Some(&admin)).await;
    let me = page["items"][0]["id"].as_str().unwrap();
    let other = page["items"][1]["id"].as_str().unwrap();
    let token = app.login(me).await;
    assert_eq!(
        app.get(&format!("/api/v1/members/{me}"), Some(&token))
            .await
            .0,
        200
    );
    assert_eq!(
        app.get(&format!("/api/v1/members/{other}"), Some(&token))
            .await
            .0,
        404
    );
    let (status, body) = app.get("/api/v1/members", Some(&token)).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(app.get("/api/v1/organisations", Some(&token)).await.0, 403);
}

async fn a_bad_page_size_or_cursor_is_refused(app: TestApp) {
    let admin = app.login("admin").await;
    let (status, body) = app.get("/api/v1/members?limit=1000", Some(&admin)).await;
    assert_eq!(status, 422);
    assert_eq!(body["error"]["details"]["field"], "limit");
    let (status, body) = app.get("/api/v1/members?cursor=%%%", Some(&admin)).await;
    assert!(status == 422 || status == 400, "{status} {body}");
}

on_both_backends!(
    a_reviewer_of_one_service_point_gets_404_for_a_member_of_another,
    lists_are_limited_to_the_callers_subtree_whatever_the_filter,
    personal_numbers_are_masked_except_for_the_association,
    a_member_sees_only_their_own_record,
    a_bad_page_size_or_cursor_is_refused,
);
