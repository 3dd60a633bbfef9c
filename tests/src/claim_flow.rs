//! Claims over HTTP, as the mini-program and the reviewers' phones drive them.

use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

use crate::harness::TestApp;
use crate::pictures;

/// An amount the API answered (a money string such as `"5900.00"`).
pub fn dec(v: &Value) -> rust_decimal::Decimal {
    v.as_str()
        .unwrap_or_else(|| panic!("money string, got {v}"))
        .parse()
        .expect("decimal")
}

/// A bank card number that passes the Luhn check.
pub const BANK_CARD: &str = "6217000000000000004";

/// A member's coverage period as the union sees it.
#[derive(Clone, Debug)]
pub struct Period {
    pub member_pid: String,
    pub membership_pid: String,
    pub coverage_start: String,
    pub coverage_end: String,
    pub consecutive_periods: i64,
    pub continuous_renewal: bool,
}

impl Period {
    /// The simulation contract's `member`.
    pub fn member_json(&self) -> Value {
        json!({
            "coverage_start": self.coverage_start,
            "coverage_end": self.coverage_end,
            "consecutive_periods": self.consecutive_periods,
            "continuous_renewal": self.continuous_renewal,
        })
    }
}

/// The `index`-th membership of `scheme` that the union `union_login` sees.
pub async fn period(app: &TestApp, union_login: &str, scheme: &str, index: usize) -> Period {
    let token = app.login(union_login).await;
    let (status, page) = app
        .get(
            &format!("/api/v1/memberships?scheme={scheme}&limit=100"),
            Some(&token),
        )
        .await;
    assert_eq!(status, 200, "{page}");
    let m = &page["items"][index];
    assert!(m.is_object(), "no membership {index} of {scheme}: {page}");
    Period {
        member_pid: m["member"]["id"].as_str().expect("member").to_owned(),
        membership_pid: m["id"].as_str().expect("id").to_owned(),
        coverage_start: m["coverage_start"].as_str().expect("start").to_owned(),
        coverage_end: m["coverage_end"].as_str().expect("end").to_owned(),
        consecutive_periods: m["consecutive_periods"].as_i64().expect("periods"),
        continuous_renewal: m["continuous_renewal"].as_bool().expect("renewal"),
    }
}

/// Sends a request with an optional `Idempotency-Key`.
pub async fn post_with_key(
    app: &TestApp,
    path: &str,
    token: &str,
    key: Option<&str>,
    body: &Value,
) -> (u16, Value) {
    let mut req = app.client.post(app.url(path)).bearer_auth(token).json(body);
    if let Some(k) = key {
        req = req.header("Idempotency-Key", k);
    }
    let res = req.send().await.expect("request");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Files a draft for `period` (as the member, or a clerk with the union's token).
pub async fn file(app: &TestApp, token: &str, period: &Period, event: Value) -> Value {
    let (status, body) = app
        .post(
            "/api/v1/claims",
            Some(token),
            &json!({ "membership_id": period.membership_pid, "event": event, "bank_card": BANK_CARD }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body
}

/// Uploads one file as `wx.uploadFile` does.
pub async fn upload(
    app: &TestApp,
    token: &str,
    claim: &str,
    category: &str,
    bytes: Vec<u8>,
    filename: &str,
) -> (u16, Value) {
    let form = Form::new().part(
        "file",
        Part::bytes(bytes)
            .file_name(filename.to_owned())
            .mime_str("application/octet-stream")
            .expect("mime"),
    );
    let res = app
        .client
        .post(app.url(&format!(
            "/api/v1/claims/{claim}/materials?category={category}"
        )))
        .bearer_auth(token)
        .multipart(form)
        .send()
        .await
        .expect("upload");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Uploads a distinct photographed document for each required material; `seed` keeps
/// documents of different claims apart.
pub async fn upload_required(app: &TestApp, token: &str, detail: &Value, seed: u64) {
    upload_each_required(app, token, detail, seed, pictures::document_jpeg).await;
}

/// As [`upload_required`], with small photos (for tests that file many claims).
pub async fn upload_required_small(app: &TestApp, token: &str, detail: &Value, seed: u64) {
    upload_each_required(app, token, detail, seed, pictures::small_document_jpeg).await;
}

async fn upload_each_required(
    app: &TestApp,
    token: &str,
    detail: &Value,
    seed: u64,
    photo: fn(u64) -> Vec<u8>,
) {
    let claim = detail["claim"]["id"].as_str().expect("id");
    let required = detail["required_materials"].as_array().expect("required");
    for (i, category) in required.iter().enumerate() {
        let category = category.as_str().expect("category");
        let (status, body) = upload(
            app,
            token,
            claim,
            category,
            photo(seed * 100 + i as u64),
            "photo.jpg",
        )
        .await;
        assert_eq!(status, 201, "{category}: {body}");
    }
}

/// The claim's detail.
pub async fn detail(app: &TestApp, token: &str, claim: &str) -> Value {
    let (status, body) = app
        .get(&format!("/api/v1/claims/{claim}"), Some(token))
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Every claim `token` may see is listed as its detail shows it: the list writes its items
/// straight from the database's rows, the detail from the claim read whole (issue 20). Pages
/// of 2, so cursors are followed too. Answers how many claims were compared.
pub async fn list_items_are_their_details(app: &TestApp, token: &str) -> usize {
    let mut path = "/api/v1/claims?limit=2".to_owned();
    let mut compared = 0;
    loop {
        let (status, page) = app.get(&path, Some(token)).await;
        assert_eq!(status, 200, "{page}");
        for item in page["items"].as_array().expect("items") {
            let id = item["id"].as_str().expect("id");
            assert_eq!(item, &detail(app, token, id).await["claim"], "claim {id}");
            compared += 1;
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/claims?limit=2&cursor={cursor}"),
            None => return compared,
        }
    }
}

/// Runs an action (`submit`, `approve`, `return`, `reject`, `withdraw`) at the claim's
/// current version, adding `extra` to the body.
pub async fn act(
    app: &TestApp,
    token: &str,
    claim: &str,
    action: &str,
    extra: Value,
) -> (u16, Value) {
    let current = detail(app, token, claim).await;
    let mut body = json!({ "version": current["claim"]["version"] });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            b.insert(k.clone(), v.clone());
        }
    }
    app.post(
        &format!("/api/v1/claims/{claim}/{action}"),
        Some(token),
        &body,
    )
    .await
}

/// Approves the claim at every review stage in turn, with the token of each stage's
/// reviewer; returns the final detail.
pub async fn approve_through(app: &TestApp, claim: &str, tokens: &[(&str, String)]) -> Value {
    for _ in 0..6 {
        let any = &tokens[0].1;
        let d = detail(app, any, claim).await;
        let status = d["claim"]["status"].as_str().expect("status").to_owned();
        let Some((_, token)) = tokens.iter().find(|(stage, _)| *stage == status) else {
            return d;
        };
        let (code, body) = act(app, token, claim, "approve", json!({})).await;
        assert_eq!(code, 200, "approve at {status}: {body}");
    }
    panic!("claim {claim} never left review");
}

/// What the simulation pays for `events` in `period`.
pub async fn simulate(app: &TestApp, scheme: &str, period: &Period, events: Vec<Value>) -> Value {
    let (status, body) = app
        .post(
            "/api/v1/simulations",
            None,
            &json!({ "scheme": scheme, "member": period.member_json(), "events": events }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

/// The association pays `claim`: a payout batch, the bank's file, a result saying 成功.
/// Returns the claim's detail afterwards.
pub async fn pay(app: &TestApp, claim: &str) -> Value {
    let officer = app.login("association").await;
    let before = detail(app, &officer, claim).await;
    let (status, batch) = app
        .post("/api/v1/payout-batches", Some(&officer), &json!({}))
        .await;
    assert_eq!(status, 201, "{batch}");
    let id = batch["id"].as_str().expect("batch id").to_owned();
    let (status, full) = app
        .get(&format!("/api/v1/payout-batches/{id}"), Some(&officer))
        .await;
    assert_eq!(status, 200, "{full}");
    let item = full["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|i| i["claim_id"] == claim)
        .unwrap_or_else(|| panic!("{claim} not in {full}"))
        .clone();
    let (status, _, file) = app
        .download(&format!("/api/v1/payout-batches/{id}/file.xlsx"), &officer)
        .await;
    assert_eq!(status, 200);
    assert!(!file.is_empty());
    let result = format!(
        "流水号,户名,金额,结果,失败原因\n{},{},{},成功,\n合计,1\n",
        item["serial"].as_str().expect("serial"),
        before["claim"]["payee_name"].as_str().expect("payee"),
        item["amount"].as_str().expect("amount"),
    );
    let form = Form::new().part(
        "file",
        Part::bytes(result.into_bytes()).file_name("result.csv"),
    );
    let (status, body) = app
        .post_form(
            &format!("/api/v1/payout-batches/{id}/result"),
            &officer,
            form,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    detail(app, &officer, claim).await
}

/// Another staff account of `role` at the organisation `org` (public id), created by the
/// administrator; returns its token. Four eyes: whoever filed a claim or approved one of its
/// stages needs a colleague to approve the next.
pub async fn second_reviewer(app: &TestApp, org: &str, role: &str, login: &str) -> String {
    let admin = app.login("admin").await;
    let (status, body) = app
        .post(
            "/api/v1/staff",
            Some(&admin),
            &json!({"organisation_id": org, "role": role, "name": "第二审核员", "login": login}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    app.login(login).await
}

/// A second association reviewer (`association-2`), so that one claim's appraisal and the
/// association's review are approved by two people.
pub async fn second_association_reviewer(app: &TestApp) -> String {
    let admin = app.login("admin").await;
    let (status, associations) = app
        .get("/api/v1/organisations?kind=association", Some(&admin))
        .await;
    assert_eq!(status, 200, "{associations}");
    let org = associations["items"][0]["id"]
        .as_str()
        .expect("association");
    second_reviewer(app, org, "association_reviewer", "association-2").await
}

/// A first coverage period (no renewal) of `scheme` for the calendar `year`, written straight
/// into the database for a member the demo did not enrol in that scheme.
pub async fn first_period_of(app: &TestApp, member_pid: &str, scheme: &str, year: i32) -> Period {
    use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
    let member_row = entity::member::Entity::find()
        .filter(entity::member::Column::Pid.eq(member_pid))
        .one(&app.state.db)
        .await
        .expect("query")
        .expect("member");
    let start = chrono::NaiveDate::from_ymd_opt(year, 1, 1).expect("date");
    let end = chrono::NaiveDate::from_ymd_opt(year, 12, 31).expect("date");
    let membership_pid = uuid::Uuid::now_v7().to_string();
    entity::membership::ActiveModel {
        pid: Set(membership_pid.clone()),
        member_id: Set(member_row.id),
        organisation_id: Set(member_row.organisation_id),
        scheme_code: Set(scheme.into()),
        coverage_start: Set(start),
        coverage_end: Set(end),
        status: Set("active".into()),
        consecutive_periods: Set(1),
        continuous_renewal: Set(false),
        created_at: Set(chrono::Utc::now()),
        ..Default::default()
    }
    .insert(&app.state.db)
    .await
    .expect("membership");
    Period {
        member_pid: member_pid.to_owned(),
        membership_pid,
        coverage_start: start.to_string(),
        coverage_end: end.to_string(),
        consecutive_periods: 1,
        continuous_renewal: false,
    }
}

/// A Hengyang (`hy-2021`) period for a demo member of 呼和浩特乳业 (the demo enrols nobody in
/// hy-2021): a stay of 7000 or more goes through the appraisal.
pub async fn hengyang_period(app: &TestApp) -> Period {
    let dairy = period(app, "union-dairy", "yc-2022", 1).await;
    first_period_of(app, &dairy.member_pid, "hy-2021", 2021).await
}

/// The administrator completes Hengyang (rates chosen for the tests) and publishes it.
pub async fn complete_hengyang(app: &TestApp) {
    let def = huzhu::engine::seed_schemes()
        .expect("seeds")
        .into_iter()
        .find(|d| d.code == "hy-2021")
        .expect("hy seed");
    let mut as_json = serde_json::to_value(&def).expect("json");
    as_json["missing"] = json!([]);
    as_json["inpatient"]["bands"] = json!([
        {"from": "0", "to": "5000", "rate": "0.40"},
        {"from": "5000", "rate": "0.60"}
    ]);
    as_json["diagnosis"]["benefits"] = json!({"default_amount": "10000.00"});
    let def: huzhu::engine::SchemeDefinition =
        serde_json::from_value(as_json).expect("complete definition");
    let admin = app.login("admin").await;
    let (status, body) = app
        .post(
            "/api/v1/schemes/hy-2021/versions",
            Some(&admin),
            &serde_json::to_value(&def).expect("json"),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}
