//! Benefits without application (免申即享) end to end: the bureau's settlement file imported by
//! the association, matched to members' coverage periods, reported row by row — on both
//! databases.

use chrono::NaiveDate;
use huzhu::auth::crypto::PiiKind;
use huzhu_tests::claim_flow::{self, BANK_CARD, Period, approve_through, dec, detail, period};
use huzhu_tests::harness::{Backend, TestApp};
use huzhu_tests::roster;
use huzhu_tests::{on_both_backends, on_both_backends_with};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::Value;
use serde_json::json;

/// The plain ID numbers of the members holding a membership of `scheme`, in member order.
pub(crate) async fn id_numbers_in(app: &TestApp, scheme: &str) -> Vec<String> {
    let backend = app.state.db.get_database_backend();
    let rows = app
        .state
        .db
        .query_all_raw(Statement::from_string(
            backend,
            format!(
                "SELECT m.id_number_cipher AS c FROM member m JOIN membership s ON s.member_id = m.id \
                 WHERE s.scheme_code = '{scheme}' ORDER BY m.id"
            ),
        ))
        .await
        .expect("members");
    rows.iter()
        .map(|r| {
            let cipher: String = r.try_get("", "c").expect("cipher");
            app.state
                .pii
                .open(PiiKind::IdNumber, &cipher)
                .expect("opens")
        })
        .collect()
}

pub(crate) fn in_2025(s: &mut huzhu::settings::Settings) {
    s.clock.today = NaiveDate::from_ymd_opt(2025, 9, 15);
}

/// The plain ID number of the member of `period`.
pub(crate) async fn id_number_of(app: &TestApp, period: &Period) -> String {
    let backend = app.state.db.get_database_backend();
    let row = app
        .state
        .db
        .query_one_raw(Statement::from_string(
            backend,
            format!(
                "SELECT id_number_cipher AS c FROM member WHERE pid = '{}'",
                period.member_pid
            ),
        ))
        .await
        .expect("member")
        .expect("a row");
    let cipher: String = row.try_get("", "c").expect("cipher");
    app.state
        .pii
        .open(PiiKind::IdNumber, &cipher)
        .expect("opens")
}

/// A settlement file of one inpatient stay per `(id number, settlement id, admitted,
/// discharged, 政策范围内个人自付, 起付线)`.
pub(crate) fn stays(rows: &[(&str, &str, &str, &str, &str, &str)]) -> Vec<u8> {
    let mut text = String::from(
        "证件号码,结算ID,入院日期,出院日期,住院天数,医疗费用总额,统筹基金支付,起付标准,政策范围内个人自付,医疗类别\n",
    );
    for (id, settlement, admitted, discharged, self_pay, deductible) in rows {
        text.push_str(&format!(
            "{id},{settlement},{admitted},{discharged},10,30000.00,15000.00,{deductible},{self_pay},住院\n"
        ));
    }
    text.into_bytes()
}

/// Uploads a settlement file as `token` and waits for its job to end; returns the job.
pub(crate) async fn import(app: &TestApp, token: &str, bytes: Vec<u8>, filename: &str) -> Value {
    let (status, job) = post_file(app, token, bytes, filename).await;
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_str().expect("id").to_owned();
    for _ in 0..600 {
        let (_, job) = app
            .get(&format!("/api/v1/settlement-imports/{id}"), Some(token))
            .await;
        if job["status"] == "succeeded" || job["status"] == "failed" {
            return job;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the settlement import did not finish");
}

async fn post_file(app: &TestApp, token: &str, bytes: Vec<u8>, filename: &str) -> (u16, Value) {
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(bytes).file_name(filename.to_owned()),
    );
    let res = app
        .client
        .post(app.url("/api/v1/settlement-imports"))
        .bearer_auth(token)
        .multipart(form)
        .send()
        .await
        .expect("upload");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

const HEADER: &str = "序号,身份证号,姓名,结算流水号,定点医疗机构名称,入院日期,出院日期,住院天数,医疗费用总额,统筹基金支付,起付线,政策范围内个人自付,个人自费,结算日期,险种类型,医疗类别,主要诊断编码,主要诊断名称";

/// One CSV line of a settlement.
fn line(
    n: u32,
    id: &str,
    settlement: &str,
    admitted: &str,
    category: &str,
    insurance: &str,
) -> String {
    format!(
        "{n},{id},某某,{settlement},内蒙古医科大学附属医院,{admitted},2025-03-11,10,12000.50,8000,800,3000.25,200,2025-03-12,{insurance},{category},I21.9,急性心肌梗死"
    )
}

/// Every value of every text column of every table that contains `needle`, as `table.column`.
async fn text_columns_holding(app: &TestApp, needle: &str) -> Vec<String> {
    let db = &app.state.db;
    let backend = db.get_database_backend();
    let columns: Vec<(String, String)> = match app.backend {
        Backend::Postgres => db
            .query_all_raw(Statement::from_string(
                backend,
                "SELECT table_name::text AS t, column_name::text AS c FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND data_type IN ('text', 'character varying', 'character', 'json', 'jsonb')"
                    .to_owned(),
            ))
            .await
            .expect("columns")
            .iter()
            .map(|r| (r.try_get("", "t").unwrap(), r.try_get("", "c").unwrap()))
            .collect(),
        Backend::Sqlite => {
            let tables: Vec<String> = db
                .query_all_raw(Statement::from_string(
                    backend,
                    "SELECT name AS t FROM sqlite_master WHERE type = 'table'".to_owned(),
                ))
                .await
                .expect("tables")
                .iter()
                .map(|r| r.try_get("", "t").unwrap())
                .collect();
            let mut columns = Vec::new();
            for t in tables {
                for r in db
                    .query_all_raw(Statement::from_string(
                        backend,
                        format!("SELECT name AS c, type AS ty FROM pragma_table_info('{t}')"),
                    ))
                    .await
                    .expect("table info")
                {
                    let ty: String = r.try_get("", "ty").unwrap();
                    let ty = ty.to_lowercase();
                    if ty.contains("char") || ty.contains("text") || ty.contains("json") {
                        columns.push((t.clone(), r.try_get("", "c").unwrap()));
                    }
                }
            }
            columns
        }
    };
    assert!(columns.len() > 50, "text columns found: {}", columns.len());
    let mut found = Vec::new();
    for (t, c) in columns {
        let n = app
            .count(&format!(
                "SELECT COUNT(*) AS n FROM \"{t}\" WHERE CAST(\"{c}\" AS TEXT) LIKE '%{needle}%'"
            ))
            .await;
        if n > 0 {
            found.push(format!("{t}.{c}"));
        }
    }
    found
}

on_both_backends_with!(in2025, in_2025 =>
    an_offer_is_judged_as_simulated_confirmed_by_the_member_reviewed_and_paid,
    a_clerk_confirms_an_offer_on_behalf_and_does_not_approve_it,
    a_settlement_for_a_stay_already_filed_corroborates_the_claim_and_offers_nothing,
    an_offer_worth_nothing_is_recorded_with_its_reason_and_not_sent,
    one_files_offers_are_judged_in_its_order_and_a_stay_settled_twice_is_offered_once,
    an_import_stopped_between_its_offers_makes_the_rest_once_when_resumed,
);

on_both_backends!(
    a_settlement_file_is_matched_reported_row_by_row_and_importing_it_again_changes_nothing,
    only_the_association_imports_settlement_files,
    a_settlement_file_without_its_columns_is_refused_as_a_whole,
);

async fn a_settlement_file_is_matched_reported_row_by_row_and_importing_it_again_changes_nothing(
    app: TestApp,
) {
    let covered = id_numbers_in(&app, "nm-inpatient-2025").await;
    // Members of the hospital union are covered 2022-05-11 to 2023-05-10 only.
    let lapsed = id_numbers_in(&app, "nm-inpatient-2022").await;
    let stranger = roster::id_number(
        "150102",
        NaiveDate::from_ymd_opt(1980, 6, 1).unwrap(),
        777,
        true,
    );
    let resident = roster::id_number(
        "150102",
        NaiveDate::from_ymd_opt(1981, 7, 2).unwrap(),
        778,
        false,
    );
    let mut bad_checksum = covered[5][..17].to_owned();
    bad_checksum.push(if covered[5].ends_with('0') { '1' } else { '0' });
    let emp = "职工基本医疗保险";
    let lines = [
        // Row 3: matched (a lower-case x would be normalised too).
        line(
            1,
            &covered[0].to_lowercase(),
            "JS-0001",
            "2025-03-01",
            "住院",
            emp,
        ),
        // Row 4: matched, another member.
        line(2, &covered[1], "JS-0002", "2025/3/1", "普通住院", emp),
        // Row 5: the same settlement again in the file.
        line(3, &covered[1], "JS-0002", "2025-03-01", "普通住院", emp),
        // Row 6: not a member.
        line(4, &stranger, "JS-0004", "2025-03-01", "住院", emp),
        // Row 7: a member, not covered that day.
        line(5, &lapsed[0], "JS-0005", "2025-03-01", "住院", emp),
        // Row 8: outpatient.
        line(6, &covered[2], "JS-0006", "2025-03-01", "门诊慢特病", emp),
        // Row 9: residents' insurance.
        line(
            7,
            &resident,
            "JS-0007",
            "2025-03-01",
            "住院",
            "城乡居民基本医疗保险",
        ),
        // Row 10: an ID number with a wrong check character.
        line(8, &bad_checksum, "JS-0008", "2025-03-01", "住院", emp),
        // Row 11: an admission date nobody can read.
        line(9, &covered[3], "JS-0009", "三月一日", "住院", emp),
    ];
    let text = format!(
        "某市医疗保障局 住院结算明细\n{HEADER}\n{}\n合计,,,,,,,,,,,,,,,,,\n",
        lines.join("\n")
    );
    // The bureau's systems write GBK.
    let (gbk, _, unmappable) = encoding_rs::GBK.encode(&text);
    assert!(!unmappable);
    let association = app.login("association").await;
    let job = import(&app, &association, gbk.to_vec(), "结算明细.csv").await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let s = &job["summary"];
    assert_eq!(s["data_rows"], 9, "{s}");
    assert_eq!(s["matched"], 2, "{s}");
    assert_eq!(s["repeated_in_file"], 1, "{s}");
    assert_eq!(s["already_imported"], 0, "{s}");
    assert_eq!(s["not_a_member"], 1, "{s}");
    assert_eq!(s["not_covered"], 1, "{s}");
    assert_eq!(s["outpatient"], 1, "{s}");
    assert_eq!(s["other_insurance"], 1, "{s}");
    assert_eq!(s["rows_with_problems"], 2, "{s}");
    let problems: Vec<(i64, &str)> = s["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["row"].as_i64().unwrap(), p["code"].as_str().unwrap()))
        .collect();
    assert_eq!(
        problems,
        vec![(10, "id_number_checksum"), (11, "date_invalid")]
    );
    let unmatched: Vec<(i64, &str)> = s["unmatched_rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["row"].as_i64().unwrap(), p["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(
        unmatched,
        vec![
            (6, "not_a_member"),
            (7, "not_covered"),
            (8, "outpatient"),
            (9, "other_insurance")
        ]
    );
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM settlement").await, 2);
    assert_eq!(
        app.count(
            "SELECT COUNT(*) AS n FROM settlement WHERE settlement_id = 'JS-0001' \
             AND admitted_on = '2025-03-01' AND total_fen = 1200050 AND eligible_self_pay_fen = 300025 \
             AND deductible_fen = 80000 AND diagnosis_code = 'I21.9'"
        )
        .await,
        1
    );

    // Data minimisation: no ID number of a row left unmatched or unreadable is anywhere.
    for id in [&stranger, &resident, &lapsed[0], &covered[2], &bad_checksum] {
        let found = text_columns_holding(&app, id).await;
        assert!(found.is_empty(), "{id} is stored in {found:?}");
    }
    // The uploaded file is gone; only the report (masked) is kept.
    let (status, _, report) = app
        .download(
            &format!(
                "/api/v1/settlement-imports/{}/report.xlsx",
                job["id"].as_str().unwrap()
            ),
            &association,
        )
        .await;
    assert_eq!(status, 200);
    let cells = cells_of(&report);
    let all: String = cells
        .iter()
        .flatten()
        .cloned()
        .collect::<Vec<_>>()
        .join("|");
    assert!(!all.contains(stranger.as_str()), "{all}");
    let row_of = |n: &str| {
        cells
            .iter()
            .find(|r| r.first().map(String::as_str) == Some(n))
            .unwrap_or_else(|| panic!("no report row {n}: {cells:?}"))
            .clone()
    };
    assert_eq!(row_of("3")[6], "已匹配");
    assert_eq!(row_of("5")[6], "已跳过");
    assert_eq!(row_of("6")[6], "未匹配");
    assert!(row_of("6")[3].contains('*'), "{:?}", row_of("6"));
    assert_eq!(row_of("10")[6], "无法读取");
    assert_eq!(
        cells.iter().filter(|r| r[0].parse::<u32>().is_ok()).count(),
        9
    );

    // The same file again: nothing new, every settlement already imported.
    let again = import(&app, &association, gbk.to_vec(), "结算明细.csv").await;
    assert_eq!(again["status"], "succeeded", "{again}");
    assert_eq!(again["summary"]["matched"], 0, "{again}");
    assert_eq!(again["summary"]["already_imported"], 2, "{again}");
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM settlement").await, 2);

    // The same settlements in an .xlsx workbook with the other header spellings: still nothing.
    let xlsx = settlement_workbook(&[(&covered[0], "JS-0001"), (&covered[4], "JS-0010")]);
    let third = import(&app, &association, xlsx, "结算.xlsx").await;
    assert_eq!(third["summary"]["matched"], 1, "{third}");
    assert_eq!(third["summary"]["already_imported"], 1, "{third}");
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM settlement").await, 3);
}

async fn only_the_association_imports_settlement_files(app: TestApp) {
    let union = app.login("union-power").await;
    let (status, body) = post_file(&app, &union, b"a,b\n".to_vec(), "x.csv").await;
    assert_eq!(status, 403, "{body}");
    let association = app.login("association").await;
    let job = import(&app, &association, b"a,b\n1,2\n".to_vec(), "x.csv").await;
    let id = job["id"].as_str().unwrap();
    let (status, body) = app
        .get(&format!("/api/v1/settlement-imports/{id}"), Some(&union))
        .await;
    assert_eq!(status, 403, "{body}");
}

async fn a_settlement_file_without_its_columns_is_refused_as_a_whole(app: TestApp) {
    let association = app.login("association").await;
    let job = import(
        &app,
        &association,
        "证件号码,结算ID,入院日期,医疗费用总额\n11010519491231002X,JS1,2025-03-01,100\n"
            .as_bytes()
            .to_vec(),
        "x.csv",
    )
    .await;
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(
        job["refusal"]["code"], "settlement_missing_columns",
        "{job}"
    );
    assert_eq!(
        job["refusal"]["details"]["missing_columns"],
        serde_json::json!(["出院日期"])
    );
    let (status, body) = app
        .get(
            &format!(
                "/api/v1/settlement-imports/{}/report.xlsx",
                job["id"].as_str().unwrap()
            ),
            Some(&association),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "import_not_finished");
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM settlement").await, 0);
}

/// A settlement workbook with the headers spelled as some bureaus do, ID numbers as text.
fn settlement_workbook(rows: &[(&str, &str)]) -> Vec<u8> {
    let mut book = rust_xlsxwriter::Workbook::new();
    let ws = book.add_worksheet();
    for (c, h) in [
        "证件号码",
        "结算ID",
        "入院日期",
        "出院日期",
        "医疗费用总额",
        "医疗类别",
    ]
    .iter()
    .enumerate()
    {
        ws.write_string(0, c as u16, *h).unwrap();
    }
    for (r, (id, settlement)) in rows.iter().enumerate() {
        let r = r as u32 + 1;
        ws.write_string(r, 0, *id).unwrap();
        ws.write_string(r, 1, *settlement).unwrap();
        ws.write_string(r, 2, "2025-04-01").unwrap();
        ws.write_string(r, 3, "2025-04-05").unwrap();
        ws.write_number(r, 4, 3456.7).unwrap();
        ws.write_string(r, 5, "21").unwrap();
    }
    book.save_to_buffer().unwrap()
}

/// Every cell of the first sheet, as text, row by row.
fn cells_of(bytes: &[u8]) -> Vec<Vec<String>> {
    use calamine::{Reader, Xlsx};
    let mut book: Xlsx<_> =
        calamine::open_workbook_from_rs(std::io::Cursor::new(bytes.to_vec())).expect("xlsx");
    let first = book.sheet_names()[0].clone();
    let sheet = book.worksheet_range(&first).expect("sheet");
    sheet
        .rows()
        .map(|r| r.iter().map(|c| c.to_string()).collect())
        .collect()
}

async fn an_offer_is_judged_as_simulated_confirmed_by_the_member_reviewed_and_paid(app: TestApp) {
    let p = period(&app, "union-power", "nm-inpatient-2025", 0).await;
    let id = id_number_of(&app, &p).await;
    let association = app.login("association").await;
    let file = stays(&[(
        &id,
        "JS-100",
        "2025-03-01",
        "2025-03-11",
        "12000.00",
        "800.00",
    )]);
    let job = import(&app, &association, file, "结算.csv").await;
    assert_eq!(job["summary"]["matched"], 1, "{job}");
    assert_eq!(job["summary"]["offered"], 1, "{job}");

    // The member sees the offer with its amount and breakdown, as the simulation gives them.
    let member = app.login(&p.member_pid).await;
    let (status, mine) = app.get("/api/v1/claims?limit=20", Some(&member)).await;
    assert_eq!(status, 200, "{mine}");
    let offer = mine["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|c| c["status"] == "offered")
        .unwrap_or_else(|| panic!("no offer in {mine}"))
        .clone();
    let claim = offer["id"].as_str().expect("id").to_owned();
    let event = json!({"kind": "inpatient", "admitted_on": "2025-03-01", "discharged_on": "2025-03-11",
                       "billed_days": 10, "eligible_self_pay": "12000.00", "deductible": "800.00",
                       "personal_burden": "15000.00"});
    let sim = claim_flow::simulate(&app, "nm-inpatient-2025", &p, vec![event.clone()]).await;
    let result = &sim["results"][0];
    let shown = detail(&app, &member, &claim).await;
    assert_eq!(shown["claim"]["status"], "offered");
    assert_eq!(shown["claim"]["filed_by"], "insurance_file");
    assert_eq!(shown["claim"]["payable"], result["payable"], "{sim}");
    assert_eq!(shown["claim"]["judgement"]["items"], result["items"]);
    assert!(dec(&shown["claim"]["payable"]) > rust_decimal::Decimal::ZERO);
    // Told once, with the amount and the discharge date.
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) AS n FROM outbox WHERE occasion = 'benefit_offered' \
             AND dedupe_key = 'benefit_offered:{claim}' AND payload LIKE '%\"amount\":\"{}\"%' \
             AND payload LIKE '%2025年03月11日%'",
            result["payable"].as_str().unwrap()
        ))
        .await,
        1
    );
    // Reviewers do not see an unconfirmed offer in their queues.
    let union = app.login("union-power").await;
    let (_, queue) = app
        .get("/api/v1/claims?status=union_review&limit=50", Some(&union))
        .await;
    assert!(
        !queue["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == claim.as_str()),
        "{queue}"
    );

    // Applying for the same stay is refused with a pointer to the offer.
    let (status, refused) = app
        .post(
            "/api/v1/claims",
            Some(&member),
            &json!({ "membership_id": p.membership_pid, "event": {"kind": "inpatient",
                     "admitted_on": "2025-03-05", "discharged_on": "2025-03-09",
                     "eligible_self_pay": "100.00"}, "bank_card": BANK_CARD }),
        )
        .await;
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["error"]["code"], "stay_already_offered");
    assert_eq!(refused["error"]["details"]["offer"], claim.as_str());

    // Not the association; a stale version is refused; then it enters review.
    let (status, _) = app
        .post(
            &format!("/api/v1/claims/{claim}/confirm-offer"),
            Some(&association),
            &json!({ "version": 1, "bank_card": BANK_CARD }),
        )
        .await;
    assert_eq!(status, 403);
    let (status, stale) = app
        .post(
            &format!("/api/v1/claims/{claim}/confirm-offer"),
            Some(&member),
            &json!({ "version": 7, "bank_card": BANK_CARD }),
        )
        .await;
    assert_eq!(status, 409, "{stale}");
    let (status, confirmed) = app
        .post(
            &format!("/api/v1/claims/{claim}/confirm-offer"),
            Some(&member),
            &json!({ "version": 1, "bank_card": BANK_CARD }),
        )
        .await;
    assert_eq!(status, 200, "{confirmed}");
    // Review by exception: nm-inpatient-2025's offers skip the union's and the service
    // point's checks of photographs; the association judges the amount.
    assert_eq!(
        confirmed["claim"]["status"], "association_review",
        "{confirmed}"
    );
    let (status, again) = app
        .post(
            &format!("/api/v1/claims/{claim}/confirm-offer"),
            Some(&member),
            &json!({ "version": confirmed["claim"]["version"], "bank_card": BANK_CARD }),
        )
        .await;
    assert_eq!(status, 409, "{again}");
    assert_eq!(again["error"]["code"], "invalid_transition");

    // Review and payment as for any claim: approved to the fen of the simulation, then paid.
    let reviewers = vec![("association_review", association.clone())];
    let approved = approve_through(&app, &claim, &reviewers).await;
    assert_eq!(approved["claim"]["status"], "approved", "{approved}");
    assert_eq!(approved["claim"]["approved"], result["payable"]);
    let paid = claim_flow::pay(&app, &claim).await;
    assert_eq!(paid["claim"]["status"], "paid", "{paid}");
    let steps: Vec<&str> = paid["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["action"].as_str().unwrap())
        .collect();
    assert_eq!(steps.first(), Some(&"offered"), "{steps:?}");
    assert_eq!(steps.get(1), Some(&"confirmed"), "{steps:?}");

    // Importing the file again offers nothing more.
    let file = stays(&[(
        &id,
        "JS-100",
        "2025-03-01",
        "2025-03-11",
        "12000.00",
        "800.00",
    )]);
    let again = import(&app, &association, file, "结算.csv").await;
    assert_eq!(again["summary"]["already_imported"], 1, "{again}");
    assert_eq!(again["summary"]["offered"], 0, "{again}");
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM claim WHERE filed_by_kind = 'insurance_file'")
            .await,
        1
    );
}

async fn a_settlement_for_a_stay_already_filed_corroborates_the_claim_and_offers_nothing(
    app: TestApp,
) {
    let p = period(&app, "union-power", "nm-inpatient-2025", 1).await;
    let id = id_number_of(&app, &p).await;
    let member = app.login(&p.member_pid).await;
    let draft = claim_flow::file(
        &app,
        &member,
        &p,
        json!({"kind": "inpatient", "admitted_on": "2025-04-01", "discharged_on": "2025-04-08",
               "eligible_self_pay": "9000.00", "deductible": "800.00"}),
    )
    .await;
    let filed = draft["claim"]["id"].as_str().unwrap().to_owned();
    let association = app.login("association").await;
    let file = stays(&[(
        &id,
        "JS-200",
        "2025-04-02",
        "2025-04-08",
        "9000.00",
        "800.00",
    )]);
    let job = import(&app, &association, file, "结算.csv").await;
    assert_eq!(job["summary"]["matched"], 1, "{job}");
    assert_eq!(job["summary"]["corroborating"], 1, "{job}");
    assert_eq!(job["summary"]["offered"], 0, "{job}");
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) AS n FROM settlement s JOIN claim c ON c.id = s.claim_id \
             WHERE s.outcome = 'corroborates' AND c.pid = '{filed}'"
        ))
        .await,
        1
    );
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM claim WHERE status = 'offered'")
            .await,
        0
    );
}

async fn an_offer_worth_nothing_is_recorded_with_its_reason_and_not_sent(app: TestApp) {
    let p = period(&app, "union-power", "nm-inpatient-2025", 2).await;
    let id = id_number_of(&app, &p).await;
    let association = app.login("association").await;
    // The first stay is offered; the second, settled in the same file, is judged after it:
    // its 自付 does not pass the second stay's deductible, and the 200.00 minimum is already
    // reached by the first, so it adds nothing (as the simulation of both stays says).
    let file = stays(&[
        (
            &id,
            "JS-300",
            "2025-05-01",
            "2025-05-03",
            "5000.00",
            "800.00",
        ),
        (&id, "JS-301", "2025-06-01", "2025-06-03", "1.00", "800.00"),
    ]);
    let job = import(&app, &association, file, "结算.csv").await;
    assert_eq!(job["summary"]["matched"], 2, "{job}");
    assert_eq!(job["summary"]["offered"], 1, "{job}");
    assert_eq!(job["summary"]["not_offered"], 1, "{job}");
    let events = vec![
        json!({"kind": "inpatient", "admitted_on": "2025-05-01", "discharged_on": "2025-05-03",
               "billed_days": 10, "eligible_self_pay": "5000.00", "deductible": "800.00",
               "personal_burden": "15000.00"}),
        json!({"kind": "inpatient", "admitted_on": "2025-06-01", "discharged_on": "2025-06-03",
               "billed_days": 10, "eligible_self_pay": "1.00", "deductible": "800.00",
               "personal_burden": "15000.00"}),
    ];
    let sim = claim_flow::simulate(&app, "nm-inpatient-2025", &p, events).await;
    assert_eq!(sim["results"][1]["payable"], "0.00", "{sim}");
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) AS n FROM claim WHERE status = 'offered' AND payable_fen = {}",
            dec(&sim["results"][0]["payable"]) * rust_decimal::Decimal::ONE_HUNDRED
        ))
        .await,
        1,
        "{sim}"
    );
    assert_eq!(
        app.count(
            "SELECT COUNT(*) AS n FROM settlement WHERE settlement_id = 'JS-301' \
             AND outcome = 'not_offered' AND reason = 'nothing_to_pay' AND claim_id IS NULL"
        )
        .await,
        1
    );
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM claim").await, 1);
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM outbox WHERE occasion = 'benefit_offered'")
            .await,
        1
    );
}

async fn a_clerk_confirms_an_offer_on_behalf_and_does_not_approve_it(app: TestApp) {
    let p = period(&app, "union-power", "nm-inpatient-2025", 3).await;
    let id = id_number_of(&app, &p).await;
    let association = app.login("association").await;
    let file = stays(&[(
        &id,
        "JS-400",
        "2025-07-01",
        "2025-07-05",
        "6000.00",
        "800.00",
    )]);
    let job = import(&app, &association, file, "结算.csv").await;
    assert_eq!(job["summary"]["offered"], 1, "{job}");
    let claim: String = {
        let backend = app.state.db.get_database_backend();
        let row = app
            .state
            .db
            .query_one_raw(Statement::from_string(
                backend,
                "SELECT pid FROM claim WHERE status = 'offered'".to_owned(),
            ))
            .await
            .unwrap()
            .unwrap();
        row.try_get("", "pid").unwrap()
    };
    let union = app.login("union-power").await;
    let card = roster::bank_card(4242);
    let (status, confirmed) = app
        .post(
            &format!("/api/v1/claims/{claim}/confirm-offer"),
            Some(&union),
            &json!({ "version": 1, "bank_card": card }),
        )
        .await;
    assert_eq!(status, 200, "{confirmed}");
    assert_eq!(confirmed["claim"]["status"], "association_review");
    let step = confirmed["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["action"] == "confirmed_on_behalf")
        .unwrap_or_else(|| panic!("no on-behalf step: {confirmed}"))
        .clone();
    assert_eq!(step["level"], "union");
    assert!(
        step["note"].as_str().unwrap().contains("代为确认"),
        "{step}"
    );
    // The member is told of the card the clerk set.
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) AS n FROM outbox WHERE occasion = 'payee_changed' \
             AND dedupe_key = 'payee_changed:{claim}:confirmed'"
        ))
        .await,
        1
    );
    // Four eyes: the clerk who chose where the money goes does not approve it — the offer
    // skips the union's stage, so the clerk has no stage of it to act on; the association does.
    let (status, refused) = claim_flow::act(&app, &union, &claim, "approve", json!({})).await;
    assert_eq!(status, 403, "{refused}");
    let (status, approved) =
        claim_flow::act(&app, &association, &claim, "approve", json!({})).await;
    assert_eq!(status, 200, "{approved}");
    assert_eq!(approved["claim"]["status"], "approved", "{approved}");
    let actions: Vec<&str> = approved["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        vec!["offered", "confirmed_on_behalf", "approved"],
        "{approved}"
    );
}

/// Fen of a decimal amount the API shows (`"1234.50"`).
fn fen_of(v: &Value) -> i64 {
    let d = dec(v) * rust_decimal::Decimal::from(100);
    i64::try_from(d.trunc()).expect("fen")
}

async fn one_files_offers_are_judged_in_its_order_and_a_stay_settled_twice_is_offered_once(
    app: TestApp,
) {
    let p = period(&app, "union-power", "nm-inpatient-2025", 0).await;
    let id = id_number_of(&app, &p).await;
    let association = app.login("association").await;
    // Two stays of one member in one file, and a second settlement (its own ID) of the first
    // stay. In the file's order — settlement date (here the discharge), then row — JS-203
    // comes right after JS-201, whose offer it corroborates; JS-202 is judged after JS-201.
    let file = stays(&[
        (
            &id,
            "JS-201",
            "2025-03-01",
            "2025-03-11",
            "12000.00",
            "800.00",
        ),
        (
            &id,
            "JS-202",
            "2025-05-01",
            "2025-05-09",
            "30000.00",
            "800.00",
        ),
        (&id, "JS-203", "2025-03-05", "2025-03-11", "500.00", "0.00"),
    ]);
    let job = import(&app, &association, file, "结算.csv").await;
    assert_eq!(job["summary"]["matched"], 3, "{job}");
    assert_eq!(job["summary"]["offered"], 2, "{job}");
    assert_eq!(job["summary"]["corroborating"], 1, "{job}");

    let stay = |admitted: &str, discharged: &str, self_pay: &str| {
        json!({"kind": "inpatient", "admitted_on": admitted, "discharged_on": discharged,
               "billed_days": 10, "eligible_self_pay": self_pay, "deductible": "800.00",
               "personal_burden": "15000.00"})
    };
    let sim = claim_flow::simulate(
        &app,
        "nm-inpatient-2025",
        &p,
        vec![
            stay("2025-03-01", "2025-03-11", "12000.00"),
            stay("2025-05-01", "2025-05-09", "30000.00"),
        ],
    )
    .await;
    for (settlement, admitted, result) in [
        ("JS-201", "2025-03-01", &sim["results"][0]),
        ("JS-202", "2025-05-01", &sim["results"][1]),
    ] {
        let payable = fen_of(&result["payable"]);
        assert!(payable > 0, "{sim}");
        assert_eq!(
            app.count(&format!(
                "SELECT COUNT(*) AS n FROM claim c JOIN settlement s ON s.claim_id = c.id \
                 WHERE s.settlement_id = '{settlement}' AND s.outcome = 'offered' \
                 AND c.status = 'offered' AND c.filed_by_pid = s.pid \
                 AND c.payable_fen = {payable} AND c.facts LIKE '%{admitted}%'"
            ))
            .await,
            1,
            "{settlement}: {sim}"
        );
    }
    // The second settlement of the first stay points at that stay's offer; nothing more is sent.
    assert_eq!(
        app.count(
            "SELECT COUNT(*) AS n FROM settlement s JOIN settlement f ON f.claim_id = s.claim_id \
             WHERE s.settlement_id = 'JS-203' AND s.outcome = 'corroborates' \
             AND f.settlement_id = 'JS-201' AND f.outcome = 'offered'"
        )
        .await,
        1
    );
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM outbox WHERE occasion = 'benefit_offered'")
            .await,
        2
    );
    // One audit event per offer, the chain intact.
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM audit_event WHERE action = 'claim.offer'")
            .await,
        2
    );
    let report = huzhu::service::audit::verify(&app.state.db)
        .await
        .expect("verify");
    assert!(report.is_intact(), "{report:?}");
}

async fn an_import_stopped_between_its_offers_makes_the_rest_once_when_resumed(app: TestApp) {
    let p = period(&app, "union-power", "nm-inpatient-2025", 0).await;
    let q = period(&app, "union-power", "nm-inpatient-2025", 1).await;
    let (a, b) = (id_number_of(&app, &p).await, id_number_of(&app, &q).await);
    let association = app.login("association").await;
    let file = stays(&[
        (
            &a,
            "JS-301",
            "2025-03-01",
            "2025-03-11",
            "12000.00",
            "800.00",
        ),
        (
            &b,
            "JS-302",
            "2025-04-01",
            "2025-04-11",
            "9000.00",
            "800.00",
        ),
    ]);
    let job = import(&app, &association, file, "结算.csv").await;
    assert_eq!(job["summary"]["offered"], 2, "{job}");
    let pid = job["id"].as_str().expect("id");
    let fingerprint = "SELECT COUNT(*) AS n FROM claim c JOIN settlement s ON s.claim_id = c.id \
                       WHERE s.settlement_id = 'JS-301' AND s.outcome = 'offered' AND c.filed_by_pid = s.pid";
    let first_offer_id = app
        .count(&format!(
            "{} ",
            fingerprint.replace("COUNT(*) AS n", "c.id AS n")
        ))
        .await;

    // As if the process had stopped after the batch of JS-301 was committed: JS-302 is matched
    // and undecided again, its offer never made, and the job is picked up again.
    let of_302 = "SELECT c.id FROM claim c JOIN settlement s ON c.filed_by_pid = s.pid \
                  WHERE s.settlement_id = 'JS-302'";
    let db = &app.state.db;
    let backend = db.get_database_backend();
    for sql in [
        format!(
            "DELETE FROM outbox WHERE occasion = 'benefit_offered' AND dedupe_key IN \
                 (SELECT 'benefit_offered:' || pid FROM claim WHERE id IN ({of_302}))"
        ),
        "UPDATE settlement SET outcome = 'matched', claim_id = NULL WHERE settlement_id = 'JS-302'"
            .to_owned(),
        format!("DELETE FROM claim_event WHERE claim_id IN ({of_302})"),
        format!("DELETE FROM claim WHERE id IN (SELECT id FROM ({of_302}) AS x)"),
        format!("UPDATE import_job SET status = 'queued' WHERE pid = '{pid}'"),
    ] {
        db.execute_raw(Statement::from_string(backend, sql))
            .await
            .expect("undo");
    }
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM claim WHERE filed_by_kind = 'insurance_file'")
            .await,
        1
    );
    let job_id = app
        .count(&format!(
            "SELECT id AS n FROM import_job WHERE pid = '{pid}'"
        ))
        .await;
    huzhu::service::import::run(app.state.clone(), job_id).await;

    let (_, job) = app
        .get(
            &format!("/api/v1/settlement-imports/{pid}"),
            Some(&association),
        )
        .await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["summary"]["offered"], 2, "{job}");
    assert_eq!(job["summary"]["matched"], 2, "{job}");
    // The first offer kept, the second made once, each told once.
    assert_eq!(app.count(fingerprint).await, 1);
    assert_eq!(
        app.count(&format!(
            "{} ",
            fingerprint.replace("COUNT(*) AS n", "c.id AS n")
        ))
        .await,
        first_offer_id
    );
    assert_eq!(
        app.count(
            "SELECT COUNT(*) AS n FROM claim c JOIN settlement s ON s.claim_id = c.id \
             WHERE s.settlement_id = 'JS-302' AND s.outcome = 'offered' AND c.filed_by_pid = s.pid"
        )
        .await,
        1
    );
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM claim WHERE filed_by_kind = 'insurance_file'")
            .await,
        2
    );
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM outbox WHERE occasion = 'benefit_offered'")
            .await,
        2
    );
}
