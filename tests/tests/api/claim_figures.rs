//! Claim figures end to end: exact counts, sums to the fen, distinct people, average days, the
//! Shanghai year boundary, each level's subtree, filters and the `.xlsx` — on both databases.

use calamine::{Data, Reader, Xlsx};
use huzhu_tests::claim_rows::{ClaimRow, insert_claims};
use huzhu_tests::harness::TestApp;
use huzhu_tests::on_both_backends;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};

const POWER: &str = "内蒙古电力（集团）有限责任公司工会";
const HOSPITAL: &str = "呼和浩特市第一医院工会";
const EDUCATION: &str = "赛罕区教育局工会";
const INPATIENT: &str = "nm-inpatient-2025";
const INPATIENT_2022: &str = "nm-inpatient-2022";
const WUJIN: &str = "wj-2022";

/// The claims every test starts from; the figures they make are worked out beside each.
async fn seed(app: &TestApp) {
    let power = |member| ClaimRow::of(POWER, member, INPATIENT);
    insert_claims(
        app,
        &[
            // Paid in 2025: 10 and 3 calendar days (Shanghai 05-02 04:00 → 05-05 09:00).
            power(0).paid("2025-03-01T02:00:00Z", "2025-03-11T03:00:00Z", 123_456),
            power(0).paid("2025-05-01T20:00:00Z", "2025-05-05T01:00:00Z", 100_001),
            // Filed 2025, paid at 2026-01-01 01:00 in Shanghai: paid in 2026, 12 days.
            power(1).paid("2025-12-20T00:00:00Z", "2025-12-31T17:00:00Z", 77_777),
            // Filed at 2024-12-31 23:59:59 in Shanghai, paid 2025-01-10: 10 days.
            power(1).paid("2024-12-31T15:59:59Z", "2025-01-10T02:00:00Z", 88_888),
            // Filed at 2026-01-01 00:30 in Shanghai.
            power(2).rejected("2025-12-31T16:30:00Z", Some("late_filing")),
            power(3).rejected("2025-06-01T00:00:00Z", Some("not_covered")),
            power(4).rejected("2025-06-02T00:00:00Z", Some("not_covered")),
            power(5).rejected("2025-09-01T00:00:00Z", None),
            // Never submitted: not filed.
            power(5),
            // Filed, nothing more yet.
            power(6).stands("union_review", "2025-07-01T00:00:00Z"),
            power(7).stands("withdrawn", "2025-07-02T00:00:00Z"),
            power(8)
                .stands("approved", "2025-08-01T00:00:00Z")
                .amount(5_000),
            power(9)
                .stands("paying", "2025-10-01T00:00:00Z")
                .amount(9_999),
            // A power member who moved: filed with the hospital's union, 10 days.
            power(0).filed_with(HOSPITAL).paid(
                "2025-11-01T00:00:00Z",
                "2025-11-11T00:00:00Z",
                1_000,
            ),
            // Hospital: 1 day, and the same day (Shanghai 08:00 → 17:00): 0 days.
            ClaimRow::of(HOSPITAL, 0, INPATIENT_2022).paid(
                "2025-04-01T00:00:00Z",
                "2025-04-02T00:00:00Z",
                10_000,
            ),
            ClaimRow::of(HOSPITAL, 1, INPATIENT_2022).paid(
                "2025-04-01T00:00:00Z",
                "2025-04-01T09:00:00Z",
                5,
            ),
            // Education, under the other service point: 20 days; one refused.
            ClaimRow::of(EDUCATION, 0, WUJIN).paid(
                "2025-02-01T00:00:00Z",
                "2025-02-21T00:00:00Z",
                20_000,
            ),
            ClaimRow::of(EDUCATION, 1, WUJIN).rejected("2025-02-02T00:00:00Z", Some("not_covered")),
        ],
    )
    .await;
}

async fn figures(app: &TestApp, token: &str, query: &str) -> Value {
    let (status, body) = app
        .get(&format!("/api/v1/claim-figures{query}"), Some(token))
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

/// The figures of a row or total, without its keys.
fn numbers(line: &Value) -> Value {
    json!({
        "filed": line["filed"],
        "refused": line["refused"],
        "refusals": line["refusals"],
        "paid": line["paid"],
        "people_helped": line["people_helped"],
        "amount_paid": line["amount_paid"],
        "average_days": line["average_days"],
    })
}

fn row<'a>(body: &'a Value, scheme: &str, unit: &str, year: i64) -> &'a Value {
    body["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .find(|r| r["scheme_code"] == scheme && r["unit"]["name"] == unit && r["year"] == year)
        .unwrap_or_else(|| panic!("no row {scheme} {unit} {year} in {body}"))
}

fn total<'a>(body: &'a Value, scheme: &str, year: i64) -> &'a Value {
    body["totals"]
        .as_array()
        .expect("totals")
        .iter()
        .find(|r| r["scheme_code"] == scheme && r["year"] == year)
        .unwrap_or_else(|| panic!("no total {scheme} {year} in {body}"))
}

/// `(scheme, unit, year)` of every row.
fn row_keys(body: &Value) -> Vec<(String, String, i64)> {
    let mut keys: Vec<(String, String, i64)> = body["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            (
                r["scheme_code"].as_str().unwrap_or_default().to_owned(),
                r["unit"]["name"].as_str().unwrap_or_default().to_owned(),
                r["year"].as_i64().unwrap_or_default(),
            )
        })
        .collect();
    keys.sort();
    keys
}

fn keys(list: &[(&str, &str, i64)]) -> Vec<(String, String, i64)> {
    let mut keys: Vec<(String, String, i64)> = list
        .iter()
        .map(|(s, u, y)| ((*s).to_owned(), (*u).to_owned(), *y))
        .collect();
    keys.sort();
    keys
}

#[allow(clippy::too_many_arguments)]
fn expect(
    filed: i64,
    refused: i64,
    refusals: &[(&str, i64)],
    paid: i64,
    people: i64,
    amount: &str,
    days: Option<&str>,
) -> Value {
    json!({
        "filed": filed,
        "refused": refused,
        "refusals": refusals
            .iter()
            .map(|(reason, n)| json!({ "reason": reason, "claims": n }))
            .collect::<Vec<_>>(),
        "paid": paid,
        "people_helped": people,
        "amount_paid": amount,
        "average_days": days,
    })
}

async fn the_association_sees_exact_figures_by_scheme_unit_and_shanghai_year(app: TestApp) {
    seed(&app).await;
    let token = app.login("association").await;
    let body = figures(&app, &token, "").await;

    assert_eq!(
        numbers(row(&body, INPATIENT, POWER, 2025)),
        expect(
            10,
            3,
            &[("not_covered", 2), ("unspecified", 1)],
            3,
            2,
            "3123.45",
            Some("7.7")
        ),
        "23 days over 3 paid claims; the claim paid at 2025-12-31T17:00Z is 2026's"
    );
    assert_eq!(
        numbers(row(&body, INPATIENT, POWER, 2026)),
        expect(1, 1, &[("late_filing", 1)], 1, 1, "777.77", Some("12.0"))
    );
    assert_eq!(
        numbers(row(&body, INPATIENT, POWER, 2024)),
        expect(1, 0, &[], 0, 0, "0.00", None),
        "filed at 23:59:59 on New Year's Eve in Shanghai"
    );
    assert_eq!(
        numbers(row(&body, INPATIENT, HOSPITAL, 2025)),
        expect(1, 0, &[], 1, 1, "10.00", Some("10.0"))
    );
    assert_eq!(
        numbers(row(&body, INPATIENT_2022, HOSPITAL, 2025)),
        expect(2, 0, &[], 2, 2, "100.05", Some("0.5")),
        "1 day and the same day"
    );
    assert_eq!(
        numbers(row(&body, WUJIN, EDUCATION, 2025)),
        expect(2, 1, &[("not_covered", 1)], 1, 1, "200.00", Some("20.0"))
    );
    assert_eq!(body["rows"].as_array().unwrap().len(), 6, "{body}");
    let power_row = row(&body, INPATIENT, POWER, 2025);
    assert!(
        power_row["unit"]["id"]
            .as_str()
            .is_some_and(|id| !id.is_empty())
    );

    // The totals count the member helped through two units once: 33 days / 4 = 8.25 → 8.3.
    assert_eq!(
        numbers(total(&body, INPATIENT, 2025)),
        expect(
            11,
            3,
            &[("not_covered", 2), ("unspecified", 1)],
            4,
            2,
            "3133.45",
            Some("8.3")
        )
    );
    assert_eq!(
        numbers(total(&body, INPATIENT, 2026)),
        expect(1, 1, &[("late_filing", 1)], 1, 1, "777.77", Some("12.0"))
    );
    assert_eq!(
        numbers(total(&body, WUJIN, 2025)),
        expect(2, 1, &[("not_covered", 1)], 1, 1, "200.00", Some("20.0"))
    );
    assert_eq!(body["totals"].as_array().unwrap().len(), 5, "{body}");

    // Admins are staff too; and the figures agree with the rows themselves.
    let admin = app.login("admin").await;
    assert_eq!(figures(&app, &admin, "").await, body);
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM claim WHERE status = 'paid'")
            .await,
        8
    );
}

async fn each_level_sees_only_its_own_subtree(app: TestApp) {
    seed(&app).await;

    let union = app.login("union-power").await;
    let body = figures(&app, &union, "").await;
    assert_eq!(
        row_keys(&body),
        keys(&[
            (INPATIENT, POWER, 2024),
            (INPATIENT, POWER, 2025),
            (INPATIENT, POWER, 2026)
        ])
    );
    // Without the hospital's claim of the member who moved.
    assert_eq!(
        numbers(total(&body, INPATIENT, 2025)),
        numbers(row(&body, INPATIENT, POWER, 2025))
    );

    let point = app.login("sp-xincheng").await;
    let body = figures(&app, &point, "").await;
    assert_eq!(
        row_keys(&body),
        keys(&[
            (INPATIENT, POWER, 2024),
            (INPATIENT, POWER, 2025),
            (INPATIENT, POWER, 2026),
            (INPATIENT, HOSPITAL, 2025),
            (INPATIENT_2022, HOSPITAL, 2025),
        ])
    );
    assert_eq!(total(&body, INPATIENT, 2025)["people_helped"], 2);
    assert_eq!(total(&body, INPATIENT, 2025)["amount_paid"], "3133.45");

    let other_point = app.login("sp-saihan").await;
    let body = figures(&app, &other_point, "").await;
    assert_eq!(row_keys(&body), keys(&[(WUJIN, EDUCATION, 2025)]));
    assert_eq!(body["totals"].as_array().unwrap().len(), 1);

    // A union without claims sees nothing, not an error.
    let dairy = app.login("union-dairy").await;
    assert_eq!(
        figures(&app, &dairy, "").await,
        json!({ "rows": [], "totals": [] })
    );
}

async fn members_are_refused_and_strangers_must_sign_in(app: TestApp) {
    seed(&app).await;
    let member_pid = app
        .state
        .db
        .query_one_raw(Statement::from_string(
            app.state.db.get_database_backend(),
            "SELECT pid FROM member ORDER BY id LIMIT 1",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<String>("", "pid")
        .unwrap();
    let member = app.login(&member_pid).await;
    for path in [
        "/api/v1/claim-figures",
        "/api/v1/exports/claim-figures.xlsx",
    ] {
        let (status, body) = app.get(path, Some(&member)).await;
        assert_eq!(status, 403, "{path}: {body}");
        assert_eq!(body["error"]["code"], "forbidden");
        let (status, body) = app.get(path, None).await;
        assert_eq!(status, 401, "{path}: {body}");
    }
}

async fn the_year_and_scheme_filters_narrow_the_figures(app: TestApp) {
    seed(&app).await;
    let token = app.login("association").await;

    let body = figures(&app, &token, "?year=2026").await;
    assert_eq!(row_keys(&body), keys(&[(INPATIENT, POWER, 2026)]));
    assert_eq!(
        numbers(total(&body, INPATIENT, 2026)),
        expect(1, 1, &[("late_filing", 1)], 1, 1, "777.77", Some("12.0"))
    );

    let body = figures(&app, &token, "?scheme_code=wj-2022").await;
    assert_eq!(row_keys(&body), keys(&[(WUJIN, EDUCATION, 2025)]));

    let body = figures(&app, &token, "?year=2025&scheme_code=nm-inpatient-2025").await;
    assert_eq!(
        row_keys(&body),
        keys(&[(INPATIENT, POWER, 2025), (INPATIENT, HOSPITAL, 2025)])
    );
    assert_eq!(total(&body, INPATIENT, 2025)["average_days"], "8.3");

    let body = figures(&app, &token, "?year=2023").await;
    assert_eq!(body, json!({ "rows": [], "totals": [] }));

    for bad in ["?year=1999", "?year=2101"] {
        let (status, body) = app
            .get(&format!("/api/v1/claim-figures{bad}"), Some(&token))
            .await;
        assert_eq!(status, 422, "{bad}: {body}");
        assert_eq!(body["error"]["details"]["field"], "year");
    }
}

async fn download(app: &TestApp, token: &str, query: &str) -> Xlsx<std::io::Cursor<Vec<u8>>> {
    let res = app
        .client
        .get(app.url(&format!("/api/v1/exports/claim-figures.xlsx{query}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("spreadsheetml")
    );
    let bytes = res.bytes().await.unwrap().to_vec();
    calamine::open_workbook_from_rs(std::io::Cursor::new(bytes)).expect("xlsx")
}

/// A sheet's rows below its title, as text and numbers.
fn sheet_rows(book: &mut Xlsx<std::io::Cursor<Vec<u8>>>, name: &str) -> Vec<Vec<Data>> {
    let range = book.worksheet_range(name).expect(name);
    range.rows().skip(1).map(<[Data]>::to_vec).collect()
}

fn text(s: &str) -> Data {
    Data::String(s.to_owned())
}

fn find<'a>(rows: &'a [Vec<Data>], scheme: &str, unit: &str) -> &'a [Data] {
    rows.iter()
        .find(|r| r[0] == text(scheme) && r[1] == text(unit))
        .unwrap_or_else(|| panic!("no {scheme} {unit} in {rows:?}"))
}

async fn the_workbook_holds_the_figures_with_chinese_headers_and_refusals_by_reason(app: TestApp) {
    seed(&app).await;
    let token = app.login("association").await;
    let mut book = download(&app, &token, "?year=2025").await;
    assert_eq!(book.sheet_names(), vec!["申领给付统计", "拒付原因"]);

    let rows = sheet_rows(&mut book, "申领给付统计");
    let headers: Vec<Data> = [
        "方案",
        "单位",
        "年度",
        "申领件数",
        "给付件数",
        "拒付件数",
        "受助人数",
        "给付金额",
        "平均办结天数",
        "待冲抵多付金额",
        "免申即享发放件数",
        "免申即享确认件数",
        "免申即享失效件数",
        "免申即享发放金额",
        "免申即享给付件数",
        "免申即享给付金额",
        "出院至给付天数中位数（免申即享）",
        "出院至给付天数中位数（申请）",
    ]
    .map(text)
    .to_vec();
    assert_eq!(rows[0], headers);
    let n = |v: f64| Data::Float(v);
    assert_eq!(
        find(&rows, INPATIENT, POWER)[2..10],
        [
            n(2025.0),
            n(10.0),
            n(3.0),
            n(3.0),
            n(2.0),
            n(3123.45),
            n(7.7),
            n(0.0)
        ]
    );
    assert_eq!(
        find(&rows, INPATIENT, "合计")[2..10],
        [
            n(2025.0),
            n(11.0),
            n(4.0),
            n(3.0),
            n(2.0),
            n(3133.45),
            n(8.3),
            n(0.0)
        ]
    );
    assert_eq!(
        find(&rows, WUJIN, EDUCATION)[2..10],
        [
            n(2025.0),
            n(2.0),
            n(1.0),
            n(1.0),
            n(1.0),
            n(200.0),
            n(20.0),
            n(0.0)
        ]
    );
    // Every unit row of a scheme comes before its total.
    let position = |scheme: &str, unit: &str| {
        rows.iter()
            .position(|r| r[0] == text(scheme) && r[1] == text(unit))
            .unwrap()
    };
    assert!(position(INPATIENT, HOSPITAL) < position(INPATIENT, "合计"));
    assert!(position(INPATIENT, POWER) < position(INPATIENT, "合计"));
    // 6 units and totals of 3 schemes in 2025, and the header.
    assert_eq!(rows.len(), 1 + 4 + 3, "{rows:?}");

    let refusals = sheet_rows(&mut book, "拒付原因");
    assert_eq!(
        refusals[0],
        ["方案", "单位", "年度", "拒付原因", "件数"]
            .map(text)
            .to_vec()
    );
    let reasons: Vec<(String, String, String, Data)> = refusals[1..]
        .iter()
        .map(|r| {
            assert_eq!(r[2], Data::Float(2025.0));
            (
                r[0].to_string(),
                r[1].to_string(),
                r[3].to_string(),
                r[4].clone(),
            )
        })
        .collect();
    let expected: Vec<(String, String, String, Data)> = [
        (INPATIENT, POWER, "not_covered", 2.0),
        (INPATIENT, POWER, "unspecified", 1.0),
        (INPATIENT, "合计", "not_covered", 2.0),
        (INPATIENT, "合计", "unspecified", 1.0),
        (WUJIN, EDUCATION, "not_covered", 1.0),
        (WUJIN, "合计", "not_covered", 1.0),
    ]
    .iter()
    .map(|(s, u, r, n)| {
        (
            (*s).to_owned(),
            (*u).to_owned(),
            (*r).to_owned(),
            Data::Float(*n),
        )
    })
    .collect();
    assert_eq!(reasons, expected);

    // A union's workbook holds its own unit only.
    let union = app.login("union-power").await;
    let mut book = download(&app, &union, "").await;
    let rows = sheet_rows(&mut book, "申领给付统计");
    let units: std::collections::BTreeSet<String> =
        rows[1..].iter().map(|r| r[1].to_string()).collect();
    assert_eq!(
        units,
        [POWER.to_owned(), "合计".to_owned()].into_iter().collect()
    );
    assert_eq!(rows.len(), 1 + 3 * 2, "three years, each a row and a total");
}

/// Offers (免申即享) beside applications, with the days from discharge to payment worked out
/// beside each (Shanghai dates of payment, 10:00 local).
async fn seed_offers(app: &TestApp) {
    let power = |member| ClaimRow::of(POWER, member, INPATIENT);
    insert_claims(
        app,
        &[
            // Offers: paid 9 and 15 days after discharge; one waiting; one lapsed; one in review.
            power(0).offer(true).discharged("2025-03-11").paid(
                "2025-03-12T02:00:00Z",
                "2025-03-20T02:00:00Z",
                100_000,
            ),
            power(1).offer(true).discharged("2025-03-31").paid(
                "2025-04-01T02:00:00Z",
                "2025-04-15T02:00:00Z",
                50_000,
            ),
            power(2)
                .offer(false)
                .stands("offered", "2025-05-01T02:00:00Z")
                .amount(30_000),
            power(3)
                .offer(false)
                .stands("lapsed", "2025-06-01T02:00:00Z")
                .amount(20_000),
            power(4)
                .offer(true)
                .stands("union_review", "2025-07-01T02:00:00Z")
                .amount(10_000),
            // An offer to a power member filed with the hospital's union: 6 days.
            power(5)
                .offer(true)
                .filed_with(HOSPITAL)
                .discharged("2025-03-30")
                .paid("2025-04-01T02:00:00Z", "2025-04-05T02:00:00Z", 8_000),
            // Applications: 39 and 40 days; one without a discharge date (not timed).
            power(6).discharged("2025-02-20").paid(
                "2025-03-01T02:00:00Z",
                "2025-03-31T02:00:00Z",
                70_000,
            ),
            power(7).discharged("2025-01-10").paid(
                "2025-01-20T02:00:00Z",
                "2025-02-19T02:00:00Z",
                60_000,
            ),
            power(8).paid("2025-01-20T02:00:00Z", "2025-02-19T02:00:00Z", 1_000),
        ],
    )
    .await;
}

async fn offers_are_counted_with_median_days_from_discharge_to_payment(app: TestApp) {
    seed_offers(&app).await;
    let token = app.login("association").await;
    let body = figures(&app, &token, "?year=2025").await;
    let offers = |line: &Value| {
        json!({
            "offers": line["offers"],
            "median_days_offered": line["median_days_offered"],
            "median_days_applied": line["median_days_applied"],
        })
    };
    let expected = |made,
                    confirmed,
                    lapsed,
                    offered: &str,
                    paid,
                    amount: &str,
                    median_offered: Option<&str>,
                    median_applied: Option<&str>| {
        json!({
            "offers": {"made": made, "confirmed": confirmed, "lapsed": lapsed,
                       "amount_offered": offered, "paid": paid, "amount_paid": amount},
            "median_days_offered": median_offered,
            "median_days_applied": median_applied,
        })
    };
    assert_eq!(
        offers(row(&body, INPATIENT, POWER, 2025)),
        expected(5, 3, 1, "2100.00", 2, "1500.00", Some("12.0"), Some("39.5"))
    );
    assert_eq!(
        offers(row(&body, INPATIENT, HOSPITAL, 2025)),
        expected(1, 1, 0, "80.00", 1, "80.00", Some("6.0"), None)
    );
    // The total's median is over every paid offer of the subtree (6, 9, 15), not of the rows.
    assert_eq!(
        offers(total(&body, INPATIENT, 2025)),
        expected(6, 4, 1, "2180.00", 3, "1580.00", Some("9.0"), Some("39.5"))
    );

    // The yearly workbook carries the same figures.
    let mut book = download(&app, &token, "?year=2025").await;
    let rows = sheet_rows(&mut book, "申领给付统计");
    let n = |v: f64| Data::Float(v);
    assert_eq!(
        find(&rows, INPATIENT, POWER)[10..],
        [
            n(5.0),
            n(3.0),
            n(1.0),
            n(2100.0),
            n(2.0),
            n(1500.0),
            n(12.0),
            n(39.5)
        ]
    );
    assert_eq!(
        find(&rows, INPATIENT, "合计")[10..],
        [
            n(6.0),
            n(4.0),
            n(1.0),
            n(2180.0),
            n(3.0),
            n(1580.0),
            n(9.0),
            n(39.5)
        ]
    );
}

on_both_backends!(
    offers_are_counted_with_median_days_from_discharge_to_payment,
    the_association_sees_exact_figures_by_scheme_unit_and_shanghai_year,
    each_level_sees_only_its_own_subtree,
    members_are_refused_and_strangers_must_sign_in,
    the_year_and_scheme_filters_narrow_the_figures,
    the_workbook_holds_the_figures_with_chinese_headers_and_refusals_by_reason,
);
