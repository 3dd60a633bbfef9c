//! Payouts: the association batches approved claims, downloads the bank's file, imports the
//! bank's result; each claim becomes paid (and the member is told) or failed with the bank's
//! reason, and a failed one is paid by a later batch.

use calamine::{Reader, Xlsx};
use huzhu::service::claim::timeline;
use huzhu_tests::claims::{ApprovedClaim, approved_claim, claim_row, insert_claim};
use huzhu_tests::harness::TestApp;
use huzhu_tests::on_both_backends;
use huzhu_tests::roster::bank_card;
use reqwest::multipart::{Form, Part};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::{Value, json};

// ---- speaking to the server ---------------------------------------------------------------

async fn create_batch(app: &TestApp, token: &str, body: Value) -> (u16, Value) {
    app.post("/api/v1/payout-batches", Some(token), &body).await
}

async fn batch(app: &TestApp, token: &str, id: &str) -> Value {
    let (status, body) = app
        .get(&format!("/api/v1/payout-batches/{id}"), Some(token))
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

/// `(status, content type, bytes)` of a batch's file.
async fn download(app: &TestApp, token: &str, id: &str, ext: &str) -> (u16, String, Vec<u8>) {
    app.download(&format!("/api/v1/payout-batches/{id}/file.{ext}"), token)
        .await
}

/// The rows of the first sheet of an .xlsx, each cell as text.
fn xlsx_rows(bytes: Vec<u8>) -> Vec<Vec<String>> {
    let mut book: Xlsx<_> =
        calamine::open_workbook_from_rs(std::io::Cursor::new(bytes)).expect("xlsx");
    let sheet = book.worksheet_range_at(0).expect("a sheet").expect("sheet");
    sheet
        .rows()
        .map(|r| r.iter().map(|c| c.to_string()).collect())
        .collect()
}

async fn post_result(app: &TestApp, token: &str, id: &str, csv: &str) -> (u16, Value) {
    let form = Form::new().part(
        "file",
        Part::bytes(csv.as_bytes().to_vec()).file_name("result.csv"),
    );
    app.post_form(&format!("/api/v1/payout-batches/{id}/result"), token, form)
        .await
}

/// The batch item of a claim: `(serial, amount)`.
fn item_of(detail: &Value, claim: &ApprovedClaim) -> (String, String) {
    let item = detail["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["claim_id"] == claim.pid.as_str())
        .unwrap_or_else(|| panic!("{} in {detail}", claim.pid));
    (
        item["serial"].as_str().unwrap().to_owned(),
        item["amount"].as_str().unwrap().to_owned(),
    )
}

/// A result line: success when `reason` is `None`.
fn line(detail: &Value, claim: &ApprovedClaim, reason: Option<&str>) -> String {
    let (serial, amount) = item_of(detail, claim);
    match reason {
        None => format!("{serial},{},{amount},成功,\n", claim.payee_name),
        Some(r) => format!("{serial},{},{amount},失败,{r}\n", claim.payee_name),
    }
}

fn result_file(lines: &[String]) -> String {
    format!(
        "流水号,户名,金额,结果,失败原因\n{}合计,{}\n",
        lines.concat(),
        lines.len()
    )
}

fn problem_codes(err: &Value) -> Vec<String> {
    err["error"]["details"]["problems"]
        .as_array()
        .unwrap_or_else(|| panic!("{err}"))
        .iter()
        .map(|p| p["code"].as_str().unwrap().to_owned())
        .collect()
}

// ---- looking inside ----------------------------------------------------------------------

async fn count(app: &TestApp, sql: &str) -> i64 {
    app.count(sql).await
}

type Step = (String, String, Option<String>);

fn step(action: &str, level: &str, note: Option<&str>) -> Step {
    (action.to_owned(), level.to_owned(), note.map(str::to_owned))
}

async fn steps(app: &TestApp, claim: &ApprovedClaim) -> Vec<Step> {
    timeline::of_claim(&app.state.db, claim.id)
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.action, s.level.as_str().to_owned(), s.note))
        .collect()
}

async fn outbox(app: &TestApp) -> Vec<entity::outbox::Model> {
    entity::outbox::Entity::find()
        .filter(entity::outbox::Column::Occasion.eq("payout_sent"))
        .order_by_asc(entity::outbox::Column::Id)
        .all(&app.state.db)
        .await
        .unwrap()
}

async fn audit_count(app: &TestApp, action: &str) -> i64 {
    count(
        app,
        &format!("SELECT COUNT(*) AS n FROM audit_event WHERE action = '{action}'"),
    )
    .await
}

/// Everything an import may change, to show a refused one changed nothing.
async fn snapshot(app: &TestApp) -> Vec<i64> {
    let mut out = Vec::new();
    for sql in [
        "SELECT COUNT(*) AS n FROM claim WHERE status = 'paying'",
        "SELECT COUNT(*) AS n FROM payout_item WHERE outcome = 'pending'",
        "SELECT COUNT(*) AS n FROM claim_event",
        "SELECT COUNT(*) AS n FROM outbox",
        "SELECT COUNT(*) AS n FROM payout_batch WHERE status = 'exported'",
        "SELECT SUM(version) AS n FROM claim",
    ] {
        out.push(count(app, sql).await);
    }
    out
}

// ---- the tests ---------------------------------------------------------------------------

async fn the_association_pays_approved_claims_and_each_result_marks_paid_or_failed(app: TestApp) {
    let zhao = approved_claim(&app, 0, 123_450, "赵建国", &bank_card(1)).await;
    let qian = approved_claim(&app, 1, 80_000, "钱  秀英", &bank_card(2)).await;
    // Still in review: never paid.
    insert_claim(&app, 2, "association_review", 5_000, "孙立", &bank_card(3)).await;
    let association = app.login("association").await;

    let (status, created) = create_batch(&app, &association, json!({})).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["item_count"], 2);
    assert_eq!(created["total"], "2034.50");
    assert_eq!(created["status"], "exported");
    assert_eq!(created["pending"], 2);
    let id = created["id"].as_str().unwrap().to_owned();
    for c in [&zhao, &qian] {
        let row = claim_row(&app, c.id).await;
        assert_eq!((row.status.as_str(), row.version), ("paying", 4));
    }

    // The bank's file: full card numbers, amounts with two decimals, the claim in 摘要.
    let (status, content_type, bytes) = download(&app, &association, &id, "xlsx").await;
    assert_eq!(status, 200);
    assert!(content_type.contains("spreadsheetml"), "{content_type}");
    let rows = xlsx_rows(bytes);
    assert_eq!(
        rows[0],
        ["序号", "流水号", "户名", "银行卡号", "金额", "摘要"]
    );
    assert_eq!(rows.len(), 4, "{rows:?}");
    let detail = batch(&app, &association, &id).await;
    let zhao_line = rows
        .iter()
        .find(|r| r[2] == "赵建国")
        .expect("赵建国's line");
    assert_eq!(zhao_line[1], item_of(&detail, &zhao).0);
    assert_eq!(zhao_line[3], zhao.card);
    assert_eq!(zhao_line[4].parse::<f64>().unwrap(), 1234.5);
    assert_eq!(zhao_line[5], format!("职工医疗互助补助 {}", zhao.pid));
    assert_eq!(rows[3][0], "合计");
    assert_eq!(rows[3][4].parse::<f64>().unwrap(), 2034.5);
    let (status, content_type, bytes) = download(&app, &association, &id, "csv").await;
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/csv"), "{content_type}");
    let text = String::from_utf8(bytes).unwrap();
    let csv: Vec<&str> = text.trim_start_matches('\u{feff}').lines().collect();
    assert_eq!(csv[0], "序号,流水号,户名,银行卡号,金额,摘要");
    assert!(
        csv.contains(
            &format!(
                "1,{},赵建国,{},1234.50,职工医疗互助补助 {}",
                item_of(&detail, &zhao).0,
                zhao.card,
                zhao.pid
            )
            .as_str()
        ),
        "{text}"
    );
    assert_eq!(csv[3], "合计,2,2034.50");

    // One paid, one refused by the bank (the name as the bank writes it, without the space).
    let file = result_file(&[
        line(&detail, &zhao, None),
        line(&detail, &qian, Some("账户已销户")).replace("钱  秀英", "钱秀英"),
    ]);
    let (status, imported) = post_result(&app, &association, &id, &file).await;
    assert_eq!(status, 200, "{imported}");
    assert_eq!(
        (
            &imported["paid"],
            &imported["failed"],
            &imported["unchanged"]
        ),
        (&json!(1), &json!(1), &json!(0))
    );
    assert_eq!(imported["batch"]["status"], "result_imported");
    assert_eq!(imported["batch"]["pending"], 0);
    let paid = claim_row(&app, zhao.id).await;
    assert_eq!(paid.status, "paid");
    assert!(paid.paid_at.is_some());
    assert_eq!(paid.version, 5);
    let failed = claim_row(&app, qian.id).await;
    assert_eq!(failed.status, "payout_failed");
    assert_eq!(failed.payout_failure.as_deref(), Some("账户已销户"));
    assert!(failed.paid_at.is_none());
    assert_eq!(
        steps(&app, &zhao).await,
        [
            step("batched", "association", None),
            step("paid", "bank", None)
        ]
    );
    assert_eq!(
        steps(&app, &qian).await,
        [
            step("batched", "association", None),
            step("payout_failed", "bank", Some("账户已销户"))
        ]
    );
    // Only the paid member is told.
    let sent = outbox(&app).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].member_id, zhao.member_id);
    assert_eq!(sent[0].dedupe_key, format!("payout_sent:{}", zhao.pid));
    let payload: Value = serde_json::from_str(&sent[0].payload).unwrap();
    assert_eq!(payload, json!({ "claim": zhao.pid, "amount": "1234.50" }));
    let detail = batch(&app, &association, &id).await;
    let outcomes: Vec<(&str, &Value)> = detail["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["outcome"].as_str().unwrap(), &i["failure_reason"]))
        .collect();
    assert_eq!(
        outcomes,
        [("paid", &Value::Null), ("failed", &json!("账户已销户"))]
    );

    // The failed claim goes into a new batch, alone, and is paid.
    let (status, second) = create_batch(&app, &association, json!({})).await;
    assert_eq!(status, 201, "{second}");
    assert_eq!(
        (&second["item_count"], &second["total"]),
        (&json!(1), &json!("800.00"))
    );
    let second_id = second["id"].as_str().unwrap().to_owned();
    assert_eq!(claim_row(&app, qian.id).await.payout_failure, None);
    let detail = batch(&app, &association, &second_id).await;
    assert_ne!(
        item_of(&detail, &qian).0,
        item_of(&batch(&app, &association, &id).await, &qian).0
    );
    let (status, imported) = post_result(
        &app,
        &association,
        &second_id,
        &result_file(&[line(&detail, &qian, None)]),
    )
    .await;
    assert_eq!(status, 200, "{imported}");
    assert_eq!(claim_row(&app, qian.id).await.status, "paid");
    let actions: Vec<String> = steps(&app, &qian).await.into_iter().map(|s| s.0).collect();
    assert_eq!(actions, ["batched", "payout_failed", "batched", "paid"]);
    assert_eq!(outbox(&app).await.len(), 2);

    // Nothing is left to pay; the list shows both batches, newest first.
    let (status, err) = create_batch(&app, &association, json!({})).await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (422, Some("nothing_to_pay"))
    );
    let (status, page) = app
        .get("/api/v1/payout-batches?limit=1", Some(&association))
        .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["items"][0]["id"], second_id.as_str());
    let cursor = page["next_cursor"].as_str().expect("a second page");
    let (_, page) = app
        .get(
            &format!("/api/v1/payout-batches?limit=1&cursor={cursor}"),
            Some(&association),
        )
        .await;
    assert_eq!(page["items"][0]["id"], id.as_str());
    assert!(page["next_cursor"].is_null());

    // Every action is in the audit trail.
    assert_eq!(audit_count(&app, "payout.batch_created").await, 2);
    assert_eq!(audit_count(&app, "payout.file_downloaded").await, 2);
    assert_eq!(audit_count(&app, "payout.result_imported").await, 2);
}

async fn a_result_with_a_wrong_amount_or_an_unknown_serial_changes_nothing(app: TestApp) {
    let zhou = approved_claim(&app, 0, 50_000, "周明", &bank_card(4)).await;
    let wu = approved_claim(&app, 1, 30_000, "吴芳", &bank_card(5)).await;
    let association = app.login("association").await;
    let (_, created) = create_batch(&app, &association, json!({})).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let detail = batch(&app, &association, &id).await;
    let before = snapshot(&app).await;

    let (zhou_serial, _) = item_of(&detail, &zhou);
    let bad_files = [
        (
            result_file(&[
                line(&detail, &zhou, None).replace("500.00", "500.01"),
                line(&detail, &wu, None),
            ]),
            vec!["amount_mismatch"],
        ),
        (
            result_file(&[
                line(&detail, &zhou, None),
                line(&detail, &wu, None)
                    .replace(&item_of(&detail, &wu).0, "ZF20990101ABCDEF000009"),
            ]),
            vec!["unknown_serial"],
        ),
        (
            result_file(&[
                line(&detail, &zhou, None).replace("周明", "周敏"),
                line(&detail, &zhou, None),
            ]),
            vec!["name_mismatch", "duplicate_serial"],
        ),
        (
            format!("{zhou_serial},周明,500.00,成功,\n合计,2\n"),
            vec!["count_mismatch"],
        ),
    ];
    for (file, codes) in bad_files {
        let (status, err) = post_result(&app, &association, &id, &file).await;
        assert_eq!(status, 422, "{err}");
        assert_eq!(err["error"]["code"], "result_file_invalid");
        assert_eq!(problem_codes(&err), codes, "{file}");
        assert_eq!(snapshot(&app).await, before, "{file}");
    }
    let (status, err) = post_result(
        &app,
        &association,
        &id,
        &result_file(&[line(&detail, &zhou, None).replace("500.00", "5.00")]),
    )
    .await;
    assert_eq!(status, 422);
    let problem = &err["error"]["details"]["problems"][0];
    assert_eq!(problem["line"], 2);
    assert_eq!(problem["serial"], zhou_serial.as_str());
    assert_eq!(snapshot(&app).await, before);
    assert_eq!(audit_count(&app, "payout.result_imported").await, 0);
    // A batch that does not exist.
    let (status, _) = post_result(
        &app,
        &association,
        "00000000-0000-7000-8000-000000000000",
        &result_file(&[line(&detail, &zhou, None)]),
    )
    .await;
    assert_eq!(status, 404);
}

async fn importing_the_same_result_again_changes_nothing(app: TestApp) {
    let zheng = approved_claim(&app, 0, 20_000, "郑浩", &bank_card(6)).await;
    let wang = approved_claim(&app, 1, 10_000, "王丽", &bank_card(7)).await;
    let association = app.login("association").await;
    let (_, created) = create_batch(&app, &association, json!({})).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let detail = batch(&app, &association, &id).await;

    // The bank answers for 郑 first: the batch stays open for 王.
    let partial = result_file(&[line(&detail, &zheng, None)]);
    let (status, first) = post_result(&app, &association, &id, &partial).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(
        (&first["paid"], &first["unchanged"]),
        (&json!(1), &json!(0))
    );
    assert_eq!(
        (&first["batch"]["status"], &first["batch"]["pending"]),
        (&json!("exported"), &json!(1))
    );
    let after_first = snapshot(&app).await;
    let (status, again) = post_result(&app, &association, &id, &partial).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(
        (&again["paid"], &again["unchanged"]),
        (&json!(0), &json!(1))
    );
    assert_eq!(snapshot(&app).await, after_first);

    // The whole file: only 王 is new.
    let whole = result_file(&[
        line(&detail, &zheng, None),
        line(&detail, &wang, Some("户名不符")),
    ]);
    let (status, done) = post_result(&app, &association, &id, &whole).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(
        (&done["paid"], &done["failed"], &done["unchanged"]),
        (&json!(0), &json!(1), &json!(1))
    );
    assert_eq!(done["batch"]["status"], "result_imported");
    let settled = snapshot(&app).await;
    let (status, again) = post_result(&app, &association, &id, &whole).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["unchanged"], 2);
    assert_eq!(snapshot(&app).await, settled);
    assert_eq!(outbox(&app).await.len(), 1);

    // A file that contradicts what was recorded is refused.
    let contradicting = result_file(&[line(&detail, &zheng, Some("退票"))]);
    let (status, err) = post_result(&app, &association, &id, &contradicting).await;
    assert_eq!(status, 422, "{err}");
    assert_eq!(problem_codes(&err), ["outcome_contradicts"]);
    assert_eq!(snapshot(&app).await, settled);
    assert_eq!(claim_row(&app, zheng.id).await.status, "paid");
    assert_eq!(claim_row(&app, wang.id).await.status, "payout_failed");
}

async fn staff_of_a_union_or_a_service_point_may_not_pay(app: TestApp) {
    approved_claim(&app, 0, 10_000, "冯强", &bank_card(8)).await;
    let association = app.login("association").await;
    let (_, created) = create_batch(&app, &association, json!({})).await;
    let id = created["id"].as_str().unwrap().to_owned();
    for account in ["union-education", "sp-saihan"] {
        let token = app.login(account).await;
        assert_eq!(
            create_batch(&app, &token, json!({})).await.0,
            403,
            "{account}"
        );
        assert_eq!(app.get("/api/v1/payout-batches", Some(&token)).await.0, 403);
        assert_eq!(
            app.get(&format!("/api/v1/payout-batches/{id}"), Some(&token))
                .await
                .0,
            403
        );
        assert_eq!(download(&app, &token, &id, "xlsx").await.0, 403);
        assert_eq!(download(&app, &token, &id, "csv").await.0, 403);
        assert_eq!(post_result(&app, &token, &id, "合计,0\n").await.0, 403);
    }
    assert_eq!(app.get("/api/v1/payout-batches", None).await.0, 401);
    assert_eq!(audit_count(&app, "payout.file_downloaded").await, 0);
}

async fn two_batches_created_at_once_never_take_one_claim_twice(app: TestApp) {
    let mut claims = Vec::new();
    for n in 0..30u32 {
        claims.push(
            approved_claim(
                &app,
                u64::from(n % 10),
                1_000 + i64::from(n),
                "陈静",
                &bank_card(100 + n),
            )
            .await,
        );
    }
    let association = app.login("association").await;
    let admin = app.login("admin").await;
    let (first, second) = tokio::join!(
        create_batch(&app, &association, json!({})),
        create_batch(&app, &admin, json!({})),
    );
    let mut batched = 0;
    for (status, body) in [&first, &second] {
        match status {
            201 => batched += body["item_count"].as_i64().unwrap(),
            422 => assert_eq!(body["error"]["code"], "nothing_to_pay", "{body}"),
            other => panic!("{other}: {body}"),
        }
    }
    assert!(first.0 == 201 || second.0 == 201, "{first:?} {second:?}");
    assert_eq!(batched, 30, "{first:?} {second:?}");
    assert_eq!(
        count(&app, "SELECT COUNT(*) AS n FROM payout_item").await,
        30
    );
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) AS n FROM (SELECT claim_id FROM payout_item GROUP BY claim_id HAVING COUNT(*) > 1) twice"
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) AS n FROM claim WHERE status = 'paying'"
        )
        .await,
        30
    );
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) AS n FROM claim_event WHERE action = 'batched'"
        )
        .await,
        30
    );
    // A refused creation left no empty batch behind.
    let batches = count(&app, "SELECT COUNT(*) AS n FROM payout_batch").await;
    assert_eq!(
        batches,
        [&first, &second].iter().filter(|r| r.0 == 201).count() as i64
    );
}

on_both_backends!(
    the_association_pays_approved_claims_and_each_result_marks_paid_or_failed,
    a_result_with_a_wrong_amount_or_an_unknown_serial_changes_nothing,
    importing_the_same_result_again_changes_nothing,
    staff_of_a_union_or_a_service_point_may_not_pay,
    two_batches_created_at_once_never_take_one_claim_twice,
);
