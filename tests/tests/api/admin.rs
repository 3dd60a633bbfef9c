use huzhu_tests::harness::TestApp;
use huzhu_tests::on_both_backends;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};

async fn count(app: &TestApp, table: &str) -> i64 {
    app.count(&format!("SELECT COUNT(*) AS n FROM {table}"))
        .await
}

async fn unit_id(app: &TestApp, token: &str, name: &str) -> String {
    app.unit_id(token, name).await
}

async fn an_admin_grows_the_tree_within_the_level_rules(app: TestApp) {
    let admin = app.login("admin").await;
    let (_, points) = app
        .get("/api/v1/organisations?kind=service_point", Some(&admin))
        .await;
    let point = points["items"][0]["id"].as_str().unwrap().to_owned();
    let (status, unit) = app
        .post("/api/v1/organisations", Some(&admin), &json!({ "parent_id": point, "kind": "unit_union", "name": "新城区环卫局工会", "head_count": 120 }))
        .await;
    assert_eq!(status, 201, "{unit}");
    assert_eq!(unit["parent_id"], point.as_str());

    // An office cannot hang under a unit union; nothing is written.
    let before = count(&app, "organisation").await;
    let (status, err) = app
        .post(
            "/api/v1/organisations",
            Some(&admin),
            &json!({ "parent_id": unit["id"], "kind": "office", "name": "x" }),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(err["error"]["code"], "wrong_parent");
    assert_eq!(count(&app, "organisation").await, before);

    // The first service point (新城区) sees its new unit; the other service point does not.
    assert_eq!(points["items"][0]["name"], "新城区代办点");
    let path = format!("/api/v1/organisations/{}", unit["id"].as_str().unwrap());
    assert_eq!(
        app.get(&path, Some(&app.login("sp-xincheng").await))
            .await
            .0,
        200
    );
    assert_eq!(
        app.get(&path, Some(&app.login("sp-saihan").await)).await.0,
        404
    );
}

async fn only_admins_change_the_tree_and_staff(app: TestApp) {
    let reviewer = app.login("association").await;
    let (status, body) = app
        .post(
            "/api/v1/organisations",
            Some(&reviewer),
            &json!({ "parent_id": "x", "kind": "office", "name": "y" }),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(app.get("/api/v1/staff", Some(&reviewer)).await.0, 403);
}

async fn staff_accounts_fit_their_level_and_logins_are_unique(app: TestApp) {
    let admin = app.login("admin").await;
    let unit = unit_id(&app, &admin, "赛罕区教育局工会").await;
    let (status, created) = app
        .post("/api/v1/staff", Some(&admin), &json!({ "organisation_id": unit, "role": "union_reviewer", "name": "刘干事", "login": "union-education-2" }))
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["wechat_bound"], false);

    let (status, err) = app
        .post("/api/v1/staff", Some(&admin), &json!({ "organisation_id": unit, "role": "union_reviewer", "name": "重复", "login": "union-education-2" }))
        .await;
    assert_eq!(status, 409);
    assert_eq!(err["error"]["code"], "login_taken");

    let (status, err) = app
        .post(
            "/api/v1/staff",
            Some(&admin),
            &json!({ "organisation_id": unit, "role": "admin", "name": "x", "login": "x-admin" }),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(err["error"]["code"], "role_does_not_fit");

    // Deactivated staff cannot sign in.
    let id = created["id"].as_str().unwrap();
    let (status, _) = app
        .patch(
            &format!("/api/v1/staff/{id}"),
            Some(&admin),
            &json!({ "active": false }),
        )
        .await;
    assert_eq!(status, 200);
    let res = app
        .client
        .post(app.url("/api/v1/auth/dev-login"))
        .json(&json!({ "account": "union-education-2" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
}

async fn a_union_clerk_adds_a_member_to_their_own_unit_only(app: TestApp) {
    let union = app.login("union-dairy").await;
    let admin = app.login("admin").await;
    let own = unit_id(&app, &admin, "呼和浩特乳业集团工会").await;
    let other = unit_id(&app, &admin, "呼和浩特市第一医院工会").await;
    let members_before = count(&app, "member").await;
    let audit_before = count(&app, "audit_event").await;

    let (status, created) = app
        .post("/api/v1/members", Some(&union), &json!({ "organisation_id": own, "name": "阿卜杜·热合曼", "id_number": "11010519491231002x", "phone": "+86 138-1234-5678", "retired": true }))
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["sex"], "female");
    assert_eq!(created["birth_date"], "1949-12-31");
    assert_eq!(created["id_number"], "1101**********002X");
    assert_eq!(created["phone"], "138****5678");
    assert_eq!(count(&app, "member").await, members_before + 1);
    assert_eq!(count(&app, "audit_event").await, audit_before + 1);

    // Personal numbers are not stored in clear.
    let backend = app.state.db.get_database_backend();
    let row = app
        .state
        .db
        .query_one_raw(Statement::from_string(
            backend,
            "SELECT id_number_cipher AS c FROM member ORDER BY id DESC LIMIT 1",
        ))
        .await
        .unwrap()
        .unwrap();
    let stored: String = row.try_get("", "c").unwrap();
    assert!(!stored.contains("11010519491231002X"));

    let cases: [(Value, u16, &str); 4] = [
        (
            json!({ "organisation_id": other, "name": "王五", "id_number": "110105194912310038" }),
            404,
            "not_found",
        ),
        (
            json!({ "organisation_id": own, "name": "王五", "id_number": "110105194912310021" }),
            422,
            "id_number_checksum",
        ),
        (
            json!({ "organisation_id": own, "name": "王五", "id_number": "11010519491231002X" }),
            409,
            "duplicate_id_number",
        ),
        (
            json!({ "organisation_id": own, "name": "王五", "id_number": "110105194912310038", "phone": "12345" }),
            422,
            "phone_invalid",
        ),
    ];
    for (body, status, code) in cases {
        let (got, err) = app.post("/api/v1/members", Some(&union), &body).await;
        assert_eq!(got, status, "{body} → {err}");
        assert_eq!(err["error"]["code"], code, "{body}");
    }
    assert_eq!(
        count(&app, "member").await,
        members_before + 1,
        "refused requests change nothing"
    );
}

on_both_backends!(
    an_admin_grows_the_tree_within_the_level_rules,
    only_admins_change_the_tree_and_staff,
    staff_accounts_fit_their_level_and_logins_are_unique,
    a_union_clerk_adds_a_member_to_their_own_unit_only,
);
