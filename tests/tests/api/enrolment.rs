//! Group enrolment end to end: roster upload as a job, ratio, transfer, confirmation with
//! coverage periods, continuity, free extension, targets — on both databases.

use chrono::{Datelike, Duration, NaiveDate};
use huzhu_tests::harness::TestApp;
use huzhu_tests::roster::{self, Line};
use huzhu_tests::{on_both_backends, on_both_backends_with};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};

fn today() -> NaiveDate {
    chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .date_naive()
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    app.count(sql).await
}

/// Publishes a new version of `code` whose enrolment window is open today; optionally a
/// calendar-year coverage of this year.
async fn open_window(app: &TestApp, code: &str, calendar_year: bool) {
    open_window_covering(app, code, calendar_year.then(|| today().year())).await;
}

/// Publishes a new version of `code` whose enrolment window is open today; with `year`, a
/// calendar-year coverage of that year.
async fn open_window_covering(app: &TestApp, code: &str, year: Option<i32>) {
    let admin = app.login("admin").await;
    let (_, current) = app.get(&format!("/api/v1/schemes/{code}"), None).await;
    let mut def = current["definition"].clone();
    def["enrolment"]["opens"] = json!((today() - Duration::days(30)).to_string());
    def["enrolment"]["closes"] = json!((today() + Duration::days(30)).to_string());
    if let Some(year) = year {
        def["coverage"]["style"] = json!("calendar_year");
        def["coverage"]["year"] = json!(year);
    }
    let (status, body) = app
        .post(
            &format!("/api/v1/schemes/{code}/versions"),
            Some(&admin),
            &def,
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

async fn unit_id(app: &TestApp, token: &str, name: &str) -> String {
    app.unit_id(token, name).await
}

/// Uploads a roster and waits for its job to end; returns the job.
async fn upload(
    app: &TestApp,
    token: &str,
    unit: &str,
    scheme: &str,
    head_count: u32,
    file: Vec<u8>,
) -> Value {
    let form = reqwest::multipart::Form::new()
        .text("organisation_id", unit.to_owned())
        .text("scheme_code", scheme.to_owned())
        .text("head_count", head_count.to_string())
        .part(
            "file",
            reqwest::multipart::Part::bytes(file).file_name("名单.xlsx"),
        );
    let res = app
        .client
        .post(app.url("/api/v1/enrolments"))
        .bearer_auth(token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let job: Value = res.json().await.unwrap();
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_str().unwrap().to_owned();
    for _ in 0..600 {
        let (_, job) = app
            .get(&format!("/api/v1/import-jobs/{id}"), Some(token))
            .await;
        if job["status"] == "succeeded" || job["status"] == "failed" {
            return job;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the import job did not finish");
}

const POWER: &str = "内蒙古电力（集团）有限责任公司工会";
const DAIRY: &str = "呼和浩特乳业集团工会";

async fn a_roster_is_enrolled_paid_and_confirmed_with_coverage_from_the_day_after(app: TestApp) {
    open_window(&app, "nm-inpatient-2022", false).await;
    let union = app.login("union-power").await;
    let unit = unit_id(&app, &union, POWER).await;
    let people = roster::people(12, 1);

    // 12 of 20 is 60%, under the 75% threshold: refused with the numbers, nothing imported.
    let members_before = count(&app, "SELECT COUNT(*) AS n FROM member").await;
    let job = upload(
        &app,
        &union,
        &unit,
        "nm-inpatient-2022",
        20,
        roster::xlsx(&people),
    )
    .await;
    assert_eq!(job["status"], "failed");
    assert_eq!(job["report"]["code"], "participation_too_low");
    assert_eq!(job["report"]["details"]["enrolled"], 12);
    assert_eq!(job["report"]["details"]["required_people"], 15);
    assert_eq!(
        count(&app, "SELECT COUNT(*) AS n FROM member").await,
        members_before
    );
    assert_eq!(
        count(&app, "SELECT COUNT(*) AS n FROM enrolment_batch").await,
        0
    );

    // 12 of 15 is 80%.
    let job = upload(
        &app,
        &union,
        &unit,
        "nm-inpatient-2022",
        15,
        roster::xlsx(&people),
    )
    .await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["processed_rows"], 12);
    let batch_id = job["enrolment_id"].as_str().unwrap().to_owned();
    let (_, batch) = app
        .get(&format!("/api/v1/enrolments/{batch_id}"), Some(&union))
        .await;
    assert_eq!(batch["status"], "submitted");
    assert_eq!(batch["member_count"], 12);
    assert_eq!(batch["fee_total"], "1200.00");
    assert_eq!(batch["participation_ratio"], "0.8");

    // The union records its transfer; a stale version is refused.
    let path = format!("/api/v1/enrolments/{batch_id}/transfer");
    let (status, err) = app
        .post(
            &path,
            Some(&union),
            &json!({ "reference": "TX1", "version": 99 }),
        )
        .await;
    assert_eq!(status, 409, "{err}");
    let (status, batch) = app
        .post(
            &path,
            Some(&union),
            &json!({ "reference": "TX20261123001", "version": batch["version"] }),
        )
        .await;
    assert_eq!(status, 200, "{batch}");
    assert_eq!(batch["status"], "payment_recorded");

    // Only the association confirms.
    let confirm = format!("/api/v1/enrolments/{batch_id}/confirm");
    assert_eq!(
        app.post(
            &confirm,
            Some(&union),
            &json!({ "version": batch["version"] })
        )
        .await
        .0,
        403
    );
    let association = app.login("association").await;
    let outbox_before = count(&app, "SELECT COUNT(*) AS n FROM outbox").await;
    let (status, confirmed) = app
        .post(
            &confirm,
            Some(&association),
            &json!({ "version": batch["version"] }),
        )
        .await;
    assert_eq!(status, 200, "{confirmed}");
    let start = today() + Duration::days(1);
    let end = today().checked_add_months(chrono::Months::new(12)).unwrap();
    assert_eq!(confirmed["coverage_start"], start.to_string());
    assert_eq!(confirmed["coverage_end"], end.to_string());
    // Confirming twice is refused.
    assert_eq!(
        app.post(
            &confirm,
            Some(&association),
            &json!({ "version": confirmed["version"] })
        )
        .await
        .0,
        409
    );

    let (_, memberships) = app
        .get(
            &format!("/api/v1/memberships?organisation={unit}&scheme=nm-inpatient-2022&limit=100"),
            Some(&union),
        )
        .await;
    let mine: Vec<&Value> = memberships["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["coverage_start"] == start.to_string())
        .collect();
    assert_eq!(mine.len(), 12);
    assert!(
        mine.iter()
            .all(|m| m["coverage_end"] == end.to_string() && m["state"] == "upcoming")
    );
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) AS n FROM outbox WHERE occasion = 'enrolment_confirmed'"
        )
        .await,
        outbox_before + 12
    );

    // The same people cannot be enrolled again for this period by another unit.
    let other_union = app.login("union-hospital").await;
    let other = unit_id(&app, &other_union, "呼和浩特市第一医院工会").await;
    let job = upload(
        &app,
        &other_union,
        &other,
        "nm-inpatient-2022",
        12,
        roster::xlsx(&people),
    )
    .await;
    assert_eq!(job["status"], "failed");
    assert_eq!(job["report"]["code"], "roster_invalid");
    assert_eq!(
        job["report"]["details"]["problems"]
            .as_array()
            .unwrap()
            .len(),
        12
    );
}

async fn a_calendar_year_scheme_covers_the_year(app: TestApp) {
    open_window(&app, "nm-inpatient-2025", true).await;
    let union = app.login("union-power").await;
    let unit = unit_id(&app, &union, POWER).await;
    // 2025 admits retirees only after continuous enrolment since 2019: a new one is refused.
    let mut with_retiree = roster::people(3, 2);
    with_retiree[1].status = "退休".into();
    let job = upload(
        &app,
        &union,
        &unit,
        "nm-inpatient-2025",
        4,
        roster::xlsx(&with_retiree),
    )
    .await;
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(
        job["report"]["details"]["problems"][0]["code"],
        "retiree_not_continuous"
    );
    assert_eq!(job["report"]["details"]["problems"][0]["row"], 4);

    let job = upload(
        &app,
        &union,
        &unit,
        "nm-inpatient-2025",
        4,
        roster::xlsx(&roster::people(3, 2)),
    )
    .await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let id = job["enrolment_id"].as_str().unwrap();
    let (status, b) = transfer_and_confirm(&app, &union, id).await;
    assert_eq!(status, 200, "{b}");
    assert_eq!(b["coverage_start"], format!("{}-01-01", today().year()));
    assert_eq!(b["coverage_end"], format!("{}-12-31", today().year()));
}

/// Gives a person an earlier membership of the same scheme family ending on `end`.
async fn earlier_period(app: &TestApp, id_number: &str, end: NaiveDate, consecutive: i32) {
    let admin = app.login("admin").await;
    let (_, found) = app
        .post(
            "/api/v1/members/search",
            Some(&admin),
            &serde_json::json!({ "id_number": id_number }),
        )
        .await;
    let member = found["items"][0]["id"].as_str().expect("member").to_owned();
    let backend = app.state.db.get_database_backend();
    let start = end - Duration::days(364);
    let sql = format!(
        "INSERT INTO membership (pid, member_id, organisation_id, scheme_code, coverage_start, coverage_end, status, consecutive_periods, continuous_renewal, created_at, fee_fen, allowance_paid, source) \
         SELECT '{}', id, organisation_id, 'nm-inpatient-2021', '{start}', '{end}', 'active', {consecutive}, false, CURRENT_TIMESTAMP, 10000, false, 'group' FROM member WHERE pid = '{member}'",
        uuid::Uuid::new_v4()
    );
    app.state
        .db
        .execute_raw(Statement::from_string(backend, sql))
        .await
        .unwrap();
}

async fn renewal_within_fifteen_days_is_continuous_and_on_the_sixteenth_is_not(app: TestApp) {
    open_window(&app, "nm-inpatient-2022", false).await;
    let union = app.login("union-power").await;
    let unit = unit_id(&app, &union, POWER).await;
    let people: Vec<Line> = roster::people(4, 3);
    // First enrol them once (members are created), then give two of them earlier periods.
    let job = upload(
        &app,
        &union,
        &unit,
        "nm-inpatient-2022",
        4,
        roster::xlsx(&people),
    )
    .await;
    assert_eq!(job["status"], "succeeded", "{job}");
    earlier_period(&app, &people[0].id_number, today() - Duration::days(15), 2).await;
    earlier_period(&app, &people[1].id_number, today() - Duration::days(16), 2).await;
    let id = job["enrolment_id"].as_str().unwrap();
    let (status, _) = transfer_and_confirm(&app, &union, id).await;
    assert_eq!(status, 200);

    let admin = app.login("admin").await;
    for (line, continuous, consecutive) in [
        (&people[0], true, 3),
        (&people[1], false, 1),
        (&people[2], false, 1),
    ] {
        let (_, m) = app
            .post(
                "/api/v1/members/search",
                Some(&admin),
                &serde_json::json!({ "id_number": line.id_number }),
            )
            .await;
        let member = m["items"][0]["id"].as_str().unwrap().to_owned();
        let token = app.login(&member).await;
        let (_, mine) = app.get("/api/v1/me/memberships", Some(&token)).await;
        let new = mine["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["scheme_code"] == "nm-inpatient-2022")
            .expect("membership");
        assert_eq!(new["continuous_renewal"], continuous, "{}", line.name);
        assert_eq!(new["consecutive_periods"], consecutive, "{}", line.name);
    }
}

async fn the_association_extends_coverage_in_one_action_and_tells_each_member(app: TestApp) {
    let association = app.login("association").await;
    let outbox_before = count(
        &app,
        "SELECT COUNT(*) AS n FROM outbox WHERE occasion = 'coverage_extended'",
    )
    .await;
    let (status, done) = app
        .post("/api/v1/extensions", Some(&association), &json!({ "scheme_code": "nm-inpatient-2022", "new_end": "2023-12-31", "reason": "2022年度保障期免费延长至2023年12月31日" }))
        .await;
    assert_eq!(status, 201, "{done}");
    // The demo's 医院 union has ten members on nm-inpatient-2022 ending 2023-05-10.
    assert_eq!(done["membership_count"], 10);
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) AS n FROM outbox WHERE occasion = 'coverage_extended'"
        )
        .await,
        outbox_before + 10
    );
    let union = app.login("union-hospital").await;
    let (_, page) = app
        .get("/api/v1/memberships?scheme=nm-inpatient-2022", Some(&union))
        .await;
    assert!(
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["coverage_end"] == "2023-12-31" && m["extended"] == true)
    );
    // Running it again extends nothing more and tells nobody twice.
    let (_, again) = app
        .post("/api/v1/extensions", Some(&association), &json!({ "scheme_code": "nm-inpatient-2022", "new_end": "2023-12-31", "reason": "重复操作" }))
        .await;
    assert_eq!(again["membership_count"], 0);
    // A union may not extend.
    assert_eq!(
        app.post(
            "/api/v1/extensions",
            Some(&union),
            &json!({ "scheme_code": "x", "new_end": "2030-01-01", "reason": "no" })
        )
        .await
        .0,
        403
    );
}

async fn targets_and_rates_add_up_across_the_tree(app: TestApp) {
    let association = app.login("association").await;
    let (_, points) = app
        .get(
            "/api/v1/organisations?kind=service_point",
            Some(&association),
        )
        .await;
    let xincheng = points["items"][0]["id"].as_str().unwrap().to_owned();
    let saihan = points["items"][1]["id"].as_str().unwrap().to_owned();
    for (org, target) in [
        (&xincheng, json!({ "target_people": 25 })),
        (&saihan, json!({ "target_ten_thousands": "0.0016" })),
    ] {
        let mut body = target.clone();
        body["organisation_id"] = json!(org);
        body["year"] = json!(2022);
        let (status, err) = app
            .client
            .put(app.url("/api/v1/targets"))
            .bearer_auth(&association)
            .json(&body)
            .send()
            .await
            .map(|r| (r.status().as_u16(), r))
            .unwrap();
        assert_eq!(status, 204, "{:?}", err.text().await);
    }
    let (status, lines) = app
        .get("/api/v1/targets/progress?year=2022", Some(&association))
        .await;
    assert_eq!(status, 200, "{lines}");
    let lines = lines.as_array().unwrap();
    let line = |name: &str| {
        lines
            .iter()
            .find(|l| l["name"] == name)
            .unwrap_or_else(|| panic!("{name}"))
    };
    // Demo: every member has periods starting in 2022 except the 电力 union's (2025).
    assert_eq!(line("新城区代办点")["enrolled"], 10);
    assert_eq!(line("赛罕区代办点")["enrolled"], 20);
    assert_eq!(line("赛罕区代办点")["target"], 16);
    assert_eq!(
        line("呼和浩特办事处")["target"],
        41,
        "children's targets add up"
    );
    assert_eq!(line("呼和浩特办事处")["enrolled"], 30);
    assert_eq!(line("新城区代办点")["completion_rate"], "0.4");
    let root = &lines[0];
    assert_eq!(root["enrolled"], 30);
    // 2023: last year's 30 are the base of the renewal rate; nobody has renewed yet.
    let (_, next) = app
        .get("/api/v1/targets/progress?year=2023", Some(&association))
        .await;
    let next = next.as_array().unwrap();
    assert_eq!(next[0]["previous_year"], 30);
    assert_eq!(next[0]["renewed"], 0);
    assert_eq!(next[0]["renewal_rate"], "0");
    let sum_children: i64 = next
        .iter()
        .filter(|l| l["kind"] == "service_point")
        .map(|l| l["previous_year"].as_i64().unwrap())
        .sum();
    assert_eq!(sum_children, 30, "service points add up to the office");
    // A union sees only itself.
    let union = app.login("union-dairy").await;
    let (_, own) = app
        .get("/api/v1/targets/progress?year=2022", Some(&union))
        .await;
    assert_eq!(own.as_array().unwrap().len(), 1);
}

/// A 10,000-row roster with 20 bad rows of different kinds: a precise report, nothing
/// imported; the corrected file imports every row.
async fn a_ten_thousand_row_roster_with_twenty_bad_rows_imports_nothing_until_corrected(
    app: TestApp,
) {
    open_window(&app, "nm-inpatient-2022", false).await;
    let union = app.login("union-dairy").await;
    let unit = unit_id(&app, &union, "呼和浩特乳业集团工会").await;
    let good = roster::people(10_000, 7);
    let mut bad = good.clone();
    // Data rows start at Excel row 3 (a title row, then the header).
    let mut expected: Vec<(u32, &str)> = Vec::new();
    let mut spoil = |i: usize, code: &'static str, f: &dyn Fn(&mut Line)| {
        f(&mut bad[i]);
        expected.push((i as u32 + 3, code));
    };
    for i in [10, 500, 1500, 4000, 9999] {
        spoil(i, "id_number_checksum", &|l| {
            let last = if l.id_number.ends_with('1') { '2' } else { '1' };
            l.id_number.replace_range(17..18, &last.to_string());
        });
    }
    for i in [20, 2000, 7000] {
        spoil(i, "name_invalid", &|l| l.name = "张3".into());
    }
    for i in [30, 3000, 8000] {
        spoil(i, "phone_invalid", &|l| l.phone = "12345".into());
    }
    for i in [40, 4500, 8500] {
        spoil(i, "not_insured", &|l| l.insured = "否".into());
    }
    for i in [50, 5000] {
        spoil(i, "age_out_of_range", &|l| {
            l.id_number = roster::id_number(
                "150102",
                NaiveDate::from_ymd_opt(1950, 3, 3).unwrap(),
                i as u32,
                true,
            );
        });
    }
    for i in [60, 6000] {
        spoil(i, "status_invalid", &|l| l.status = "离职".into());
    }
    let dup_of = good[100].id_number.clone();
    spoil(9000, "duplicate_in_file", &|l| l.id_number = dup_of.clone());
    spoil(9100, "duplicate_in_file", &|l| l.id_number = dup_of.clone());
    assert_eq!(expected.len(), 20);

    let members_before = count(&app, "SELECT COUNT(*) AS n FROM member").await;
    let job = upload(
        &app,
        &union,
        &unit,
        "nm-inpatient-2022",
        10_000,
        roster::xlsx(&bad),
    )
    .await;
    assert_eq!(job["status"], "failed", "{}", job["report"]);
    assert_eq!(job["report"]["code"], "roster_invalid");
    let problems = job["report"]["details"]["problems"].as_array().unwrap();
    let mut got: Vec<(u32, String)> = problems
        .iter()
        .map(|p| {
            (
                p["row"].as_u64().unwrap() as u32,
                p["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    got.sort();
    let mut want: Vec<(u32, String)> = expected.iter().map(|(r, c)| (*r, c.to_string())).collect();
    want.sort();
    assert_eq!(
        got, want,
        "exactly the 20 spoiled rows, each with its reason"
    );
    assert!(
        problems
            .iter()
            .all(|p| !p["message_zh"].as_str().unwrap().is_empty()
                && !p["column"].as_str().unwrap().is_empty())
    );
    assert_eq!(
        count(&app, "SELECT COUNT(*) AS n FROM member").await,
        members_before,
        "nothing imported"
    );

    let job = upload(
        &app,
        &union,
        &unit,
        "nm-inpatient-2022",
        10_000,
        roster::xlsx(&good),
    )
    .await;
    assert_eq!(job["status"], "succeeded", "{}", job["report"]);
    assert_eq!(job["processed_rows"], 10_000);
    assert_eq!(
        count(&app, "SELECT COUNT(*) AS n FROM member").await,
        members_before + 10_000
    );
    let id = job["enrolment_id"].as_str().unwrap();
    let (_, b) = app
        .get(&format!("/api/v1/enrolments/{id}"), Some(&union))
        .await;
    assert_eq!(b["member_count"], 10_000);
    assert_eq!(b["fee_total"], "1000000.00");
    let (status, _) = transfer_and_confirm(&app, &union, id).await;
    assert_eq!(status, 200);
    assert_eq!(
        count(&app, &format!("SELECT COUNT(*) AS n FROM membership WHERE enrolment_batch_id = (SELECT id FROM enrolment_batch WHERE pid = '{id}')")).await,
        10_000
    );
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) AS n FROM outbox WHERE occasion = 'enrolment_confirmed'"
        )
        .await,
        10_000
    );
}

/// The union records its transfer, the association confirms: (status, batch).
async fn transfer_and_confirm(app: &TestApp, union: &str, id: &str) -> (u16, Value) {
    let (_, b) = app
        .get(&format!("/api/v1/enrolments/{id}"), Some(union))
        .await;
    let (status, b) = app
        .post(
            &format!("/api/v1/enrolments/{id}/transfer"),
            Some(union),
            &json!({ "reference": "T", "version": b["version"] }),
        )
        .await;
    assert_eq!(status, 200, "{b}");
    let association = app.login("association").await;
    app.post(
        &format!("/api/v1/enrolments/{id}/confirm"),
        Some(&association),
        &json!({ "version": b["version"] }),
    )
    .await
}

/// Enrols `people` in a unit through the whole flow; returns the enrolment id.
async fn enrol(
    app: &TestApp,
    union_login: &str,
    unit_name: &str,
    scheme: &str,
    people: &[Line],
) -> String {
    let union = app.login(union_login).await;
    let unit = unit_id(app, &union, unit_name).await;
    let job = upload(
        app,
        &union,
        &unit,
        scheme,
        people.len() as u32,
        roster::xlsx(people),
    )
    .await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let id = job["enrolment_id"].as_str().unwrap().to_owned();
    let (status, b) = transfer_and_confirm(app, &union, &id).await;
    assert_eq!(status, 200, "{b}");
    id
}

async fn at_renewal_the_union_sees_who_was_carried_over_who_left_and_who_is_new(app: TestApp) {
    open_window(&app, "nm-inpatient-2022", false).await;
    let first = roster::people(5, 11);
    enrol(&app, "union-power", POWER, "nm-inpatient-2022", &first).await;
    open_window(&app, "nm-inpatient-2025", true).await;
    let mut second: Vec<Line> = first[..3].to_vec();
    second.extend(roster::people(2, 12));
    let id = enrol(&app, "union-power", POWER, "nm-inpatient-2025", &second).await;
    let union = app.login("union-power").await;
    let (status, c) = app
        .get(&format!("/api/v1/enrolments/{id}/comparison"), Some(&union))
        .await;
    assert_eq!(status, 200, "{c}");
    assert!(c["previous_enrolment_id"].is_string());
    assert_eq!(c["carried_over"].as_array().unwrap().len(), 3);
    assert_eq!(c["left"].as_array().unwrap().len(), 2);
    assert_eq!(c["new"].as_array().unwrap().len(), 2);
    let left: Vec<&str> = c["left"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(left.contains(&first[3].name.as_str()) && left.contains(&first[4].name.as_str()));
}

async fn the_ledger_read_back_with_calamine_holds_every_member(app: TestApp) {
    use calamine::{Reader, Xlsx};
    let association = app.login("association").await;
    let (_, root) = app
        .get("/api/v1/organisations?limit=1", Some(&association))
        .await;
    let root_id = root["items"][0]["id"].as_str().unwrap().to_owned();
    let res = app
        .client
        .get(app.url(&format!("/api/v1/organisations/{root_id}/ledger.xlsx")))
        .bearer_auth(&association)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("filename*=UTF-8''")
    );
    let bytes = res.bytes().await.unwrap().to_vec();
    let mut book: Xlsx<_> =
        calamine::open_workbook_from_rs(std::io::Cursor::new(bytes)).expect("xlsx");
    let sheet = book.worksheet_range("参互单位台账").expect("sheet");
    let total = count(&app, "SELECT COUNT(*) AS n FROM membership").await;
    // Title, header, one row per membership, totals.
    let data: Vec<_> = sheet
        .rows()
        .skip(2)
        .filter(|r| {
            r.first()
                .is_some_and(|c| c.to_string().parse::<i64>().is_ok())
        })
        .collect();
    assert_eq!(data.len() as i64, total);
    // Every demo member is in it, with the full ID number for the association.
    let (_, members) = app
        .get("/api/v1/members?limit=100", Some(&association))
        .await;
    let ids: std::collections::HashSet<String> = data.iter().map(|r| r[3].to_string()).collect();
    for m in members["items"].as_array().unwrap() {
        assert!(
            ids.contains(m["id_number"].as_str().unwrap()),
            "{}",
            m["name"]
        );
    }
    // A union gets its own ledger, masked.
    let union = app.login("union-dairy").await;
    let unit = unit_id(&app, &union, "呼和浩特乳业集团工会").await;
    let res = app
        .client
        .get(app.url(&format!("/api/v1/organisations/{unit}/ledger.xlsx")))
        .bearer_auth(&union)
        .send()
        .await
        .unwrap();
    let bytes = res.bytes().await.unwrap().to_vec();
    let mut book: Xlsx<_> =
        calamine::open_workbook_from_rs(std::io::Cursor::new(bytes)).expect("xlsx");
    let sheet = book.worksheet_range("参互单位台账").expect("sheet");
    let rows: Vec<_> = sheet
        .rows()
        .skip(2)
        .filter(|r| {
            r.first()
                .is_some_and(|c| c.to_string().parse::<i64>().is_ok())
        })
        .collect();
    assert_eq!(rows.len(), 10);
    assert!(rows.iter().all(|r| r[3].to_string().contains("**********")));
    // Someone else's unit is not found.
    let other = unit_id(&app, &association, POWER).await;
    let res = app
        .client
        .get(app.url(&format!("/api/v1/organisations/{other}/ledger.xlsx")))
        .bearer_auth(&union)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    // The yearly summary and the progress sheet open too.
    for path in [
        format!("/api/v1/organisations/{root_id}/summary.xlsx?year=2022"),
        "/api/v1/targets/progress.xlsx?year=2022".to_owned(),
        "/api/v1/roster-template.xlsx".to_owned(),
    ] {
        let res = app
            .client
            .get(app.url(&path))
            .bearer_auth(&association)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{path}");
        let bytes = res.bytes().await.unwrap().to_vec();
        let book: Xlsx<_> =
            calamine::open_workbook_from_rs(std::io::Cursor::new(bytes)).expect("xlsx");
        assert!(!book.sheet_names().is_empty());
    }
}

on_both_backends!(
    a_roster_is_enrolled_paid_and_confirmed_with_coverage_from_the_day_after,
    a_calendar_year_scheme_covers_the_year,
    renewal_within_fifteen_days_is_continuous_and_on_the_sixteenth_is_not,
    the_association_extends_coverage_in_one_action_and_tells_each_member,
    targets_and_rates_add_up_across_the_tree,
    a_ten_thousand_row_roster_with_twenty_bad_rows_imports_nothing_until_corrected,
    at_renewal_the_union_sees_who_was_carried_over_who_left_and_who_is_new,
    the_ledger_read_back_with_calamine_holds_every_member,
    a_roster_with_bad_rows_people_enrolled_elsewhere_and_too_few_people_is_told_everything_at_once,
    a_landline_where_a_mobile_is_optional_is_a_warning,
    the_renewal_roster_round_trips_leavers_deleted_a_joiner_appended_continuity_kept,
    what_the_roster_says_is_kept_in_the_ledger_the_member_detail_and_the_renewal_roster,
);

// ---- one clock: the whole enrolment year on the service's pinned date -----------------------

/// The service's clock pinned inside nm-inpatient-2025's enrolment window (2024-09-01 …
/// 2024-11-30); the real date is long past it.
fn in_autumn_2024(s: &mut huzhu::settings::Settings) {
    s.clock.today = NaiveDate::from_ymd_opt(2024, 10, 15);
}

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

/// The member's newest membership of `scheme`, as the member sees it.
async fn my_membership(app: &TestApp, id_number: &str, scheme: &str) -> Value {
    let admin = app.login("admin").await;
    let (_, m) = app
        .post(
            "/api/v1/members/search",
            Some(&admin),
            &json!({ "id_number": id_number }),
        )
        .await;
    let member = m["items"][0]["id"].as_str().unwrap().to_owned();
    let token = app.login(&member).await;
    let (_, mine) = app.get("/api/v1/me/memberships", Some(&token)).await;
    mine["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["scheme_code"] == scheme)
        .cloned()
        .expect("membership")
}

/// GETs a workbook and opens it with calamine.
async fn workbook(
    app: &TestApp,
    token: &str,
    path: &str,
) -> calamine::Xlsx<std::io::Cursor<Vec<u8>>> {
    let res = app
        .client
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{path}");
    let bytes = res.bytes().await.unwrap().to_vec();
    calamine::open_workbook_from_rs(std::io::Cursor::new(bytes)).expect("xlsx")
}

async fn with_the_clock_pinned_a_whole_enrolment_year_runs_on_that_date(app: TestApp) {
    use calamine::Reader;
    let union = app.login("union-dairy").await;
    let unit = unit_id(&app, &union, DAIRY).await;
    let people = roster::people(4, 21);
    // The window is open on the pinned date (the real clock would say enrolment_closed).
    let job = upload(
        &app,
        &union,
        &unit,
        "nm-inpatient-2025",
        4,
        roster::xlsx(&people),
    )
    .await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let id = job["enrolment_id"].as_str().unwrap().to_owned();
    // Continuity at confirmation is judged on the pinned date: 15 days after an end keeps
    // it, 16 do not (on the real date both would be long broken); one period still running.
    earlier_period(&app, &people[0].id_number, d("2024-12-31"), 2).await;
    earlier_period(&app, &people[1].id_number, d("2024-09-30"), 2).await;
    earlier_period(&app, &people[2].id_number, d("2024-09-29"), 2).await;
    let (status, b) = transfer_and_confirm(&app, &union, &id).await;
    assert_eq!(status, 200, "{b}");
    assert_eq!(b["coverage_start"], "2025-01-01");
    assert_eq!(b["coverage_end"], "2025-12-31");
    for (line, continuous, consecutive) in [
        (&people[0], true, 3),
        (&people[1], true, 3),
        (&people[2], false, 1),
        (&people[3], false, 1),
    ] {
        let m = my_membership(&app, &line.id_number, "nm-inpatient-2025").await;
        assert_eq!(m["continuous_renewal"], continuous, "{}", line.name);
        assert_eq!(m["consecutive_periods"], consecutive, "{}", line.name);
        // Coverage starts after the pinned date: upcoming, not ended.
        assert_eq!(m["state"], "upcoming", "{}", line.name);
    }

    // The exports are dated by the same clock.
    let mut progress = workbook(&app, &union, "/api/v1/targets/progress.xlsx?year=2025").await;
    let first = progress.sheet_names()[0].clone();
    let sheet = progress.worksheet_range(&first).expect("sheet");
    let title = sheet.get((0, 0)).map(|c| c.to_string()).unwrap_or_default();
    assert!(title.contains("2024-10-15"), "{title}");
    let mut ledger = workbook(
        &app,
        &union,
        &format!("/api/v1/organisations/{unit}/ledger.xlsx?year=2025"),
    )
    .await;
    let sheet = ledger.worksheet_range("参互单位台账").expect("sheet");
    let names: Vec<String> = sheet
        .rows()
        .skip(2)
        .filter_map(|r| r.get(2).map(|c| c.to_string()))
        .collect();
    for line in &people {
        assert!(names.contains(&line.name), "{} in the ledger", line.name);
    }
}

// ---- the scheme says which columns a roster must fill -------------------------------------

/// A roster with exactly these headers (row 2, under a title) and rows.
fn sheet(headers: &[&str], rows: &[Vec<String>]) -> Vec<u8> {
    let mut wb = rust_xlsxwriter::Workbook::new();
    let ws = wb.add_worksheet();
    ws.write_string(0, 0, "参互名单").unwrap();
    for (c, h) in headers.iter().enumerate() {
        ws.write_string(1, c as u16, *h).unwrap();
    }
    for (r, row) in rows.iter().enumerate() {
        for (c, v) in row.iter().enumerate() {
            if !v.is_empty() {
                ws.write_string(r as u32 + 2, c as u16, v).unwrap();
            }
        }
    }
    wb.save_to_buffer().unwrap()
}

/// A full row: 序号, 姓名, 身份证号码, 性别 (as the ID says), 手机号码, 是否参加医保, 在职/退休.
fn full_row(i: usize, l: &Line) -> Vec<String> {
    let sex_digit = l.id_number.as_bytes()[16] - b'0';
    let sex = if sex_digit % 2 == 1 { "男" } else { "女" };
    vec![
        (i + 1).to_string(),
        l.name.clone(),
        l.id_number.clone(),
        sex.into(),
        l.phone.clone(),
        l.insured.clone(),
        l.status.clone(),
    ]
}

const FULL: [&str; 7] = [
    "序号",
    "姓名",
    "身份证号码",
    "性别",
    "手机号码",
    "是否参加医保",
    "在职/退休",
];

async fn the_scheme_says_which_columns_a_roster_must_fill_and_sex_must_match_the_id_number(
    app: TestApp,
) {
    let union = app.login("union-dairy").await;
    let unit = unit_id(&app, &union, DAIRY).await;
    let people = roster::people(5, 41);
    // nm-inpatient-2025 needs the insured flag, a mobile number (SMS) and the status.
    let bare: Vec<Vec<String>> = people
        .iter()
        .enumerate()
        .map(|(i, l)| vec![(i + 1).to_string(), l.name.clone(), l.id_number.clone()])
        .collect();
    let job = upload(
        &app,
        &union,
        &unit,
        "nm-inpatient-2025",
        5,
        sheet(&FULL[..3], &bare),
    )
    .await;
    assert_eq!(job["status"], "failed");
    assert_eq!(job["report"]["code"], "roster_missing_columns", "{job}");
    let missing = job["report"]["details"]["missing_columns"].to_string();
    for column in ["手机号码", "是否参加医保", "在职/退休"] {
        assert!(missing.contains(column), "{column} in {missing}");
    }

    let mut rows: Vec<Vec<String>> = people
        .iter()
        .enumerate()
        .map(|(i, l)| full_row(i, l))
        .collect();
    rows[0][5] = String::new(); // row 3: insured left empty
    rows[1][4] = String::new(); // row 4: no phone
    rows[2][3] = if rows[2][3] == "男" { "女" } else { "男" }.into(); // row 5: sex contradicts
    rows[3][4] = "0471-6281234".into(); // row 6: a landline where SMS needs a mobile
    let job = upload(
        &app,
        &union,
        &unit,
        "nm-inpatient-2025",
        5,
        sheet(&FULL, &rows),
    )
    .await;
    assert_eq!(job["status"], "failed");
    assert_eq!(
        row_problems(&job),
        vec![
            (3, "insured_missing".to_owned()),
            (4, "phone_missing".to_owned()),
            (5, "sex_mismatch".to_owned()),
            (6, "phone_not_mobile".to_owned()),
        ],
        "{job}"
    );
    assert_eq!(job["report"]["details"]["rows_with_problems"], 4);

    // Fixed, and with a name of a rare character: it goes in, the warning shown.
    let mut rows: Vec<Vec<String>> = people
        .iter()
        .enumerate()
        .map(|(i, l)| full_row(i, l))
        .collect();
    rows[4][1] = "王䶮".into();
    let job = upload(
        &app,
        &union,
        &unit,
        "nm-inpatient-2025",
        5,
        sheet(&FULL, &rows),
    )
    .await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert!(job["report"].is_null(), "{job}");
    let warnings = job["warnings"].as_array().expect("warnings");
    assert_eq!(warnings.len(), 1, "{job}");
    assert_eq!(warnings[0]["row"], 7);
    assert_eq!(warnings[0]["code"], "name_rare_character");
}

/// Where the number is optional (nm-inpatient-2022), a landline is a warning, not a refusal.
async fn a_landline_where_a_mobile_is_optional_is_a_warning(app: TestApp) {
    open_window(&app, "nm-inpatient-2022", false).await;
    let union = app.login("union-dairy").await;
    let unit = unit_id(&app, &union, DAIRY).await;
    let people = roster::people(3, 42);
    let mut rows: Vec<Vec<String>> = people
        .iter()
        .enumerate()
        .map(|(i, l)| full_row(i, l))
        .collect();
    rows[1][4] = "0471-6281234".into();
    let job = upload(
        &app,
        &union,
        &unit,
        "nm-inpatient-2022",
        3,
        sheet(&FULL, &rows),
    )
    .await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["warnings"][0]["code"], "phone_landline", "{job}");
    assert_eq!(job["warnings"][0]["row"], 4);
}

// ---- progress tells the truth -------------------------------------------------------------

/// The union's own progress line for 2025.
async fn own_progress(app: &TestApp, token: &str) -> Value {
    let (status, lines) = app
        .get("/api/v1/targets/progress?year=2025", Some(token))
        .await;
    assert_eq!(status, 200, "{lines}");
    lines[0].clone()
}

async fn progress_shows_a_submitted_roster_as_awaiting_until_it_is_confirmed(app: TestApp) {
    use calamine::Reader;
    let union = app.login("union-dairy").await;
    let unit = unit_id(&app, &union, DAIRY).await;
    let before = own_progress(&app, &union).await;
    assert_eq!(before["awaiting"], 0, "{before}");
    let job = upload(
        &app,
        &union,
        &unit,
        "nm-inpatient-2025",
        3,
        roster::xlsx(&roster::people(3, 51)),
    )
    .await;
    assert_eq!(job["status"], "succeeded", "{job}");
    // Submitted for the 2025 calendar year: awaiting transfer and confirmation.
    let line = own_progress(&app, &union).await;
    assert_eq!(line["awaiting"], 3, "{line}");
    assert_eq!(line["enrolled"], before["enrolled"]);
    let mut book = workbook(&app, &union, "/api/v1/targets/progress.xlsx?year=2025").await;
    let first = book.sheet_names()[0].clone();
    let sheet = book.worksheet_range(&first).expect("sheet");
    let rows: Vec<Vec<String>> = sheet
        .rows()
        .map(|r| r.iter().map(|c| c.to_string()).collect())
        .collect();
    let header = rows
        .iter()
        .position(|r| r.iter().any(|c| c == "已提交待确认(人)"))
        .expect("an awaiting column");
    let col = rows[header]
        .iter()
        .position(|c| c == "已提交待确认(人)")
        .unwrap();
    assert_eq!(rows[header + 1][col], "3");

    let id = job["enrolment_id"].as_str().unwrap();
    let (status, _) = transfer_and_confirm(&app, &union, id).await;
    assert_eq!(status, 200);
    let line = own_progress(&app, &union).await;
    assert_eq!(line["awaiting"], 0, "{line}");
    assert_eq!(
        line["enrolled"].as_i64().unwrap(),
        before["enrolled"].as_i64().unwrap() + 3
    );
}

on_both_backends_with!(
    clock,
    in_autumn_2024 => with_the_clock_pinned_a_whole_enrolment_year_runs_on_that_date,
    the_scheme_says_which_columns_a_roster_must_fill_and_sex_must_match_the_id_number,
    progress_shows_a_submitted_roster_as_awaiting_until_it_is_confirmed,
);

// ---- every problem in one pass ------------------------------------------------------------

/// (row, code) of every row problem of a refused job, sorted.
fn row_problems(job: &Value) -> Vec<(u64, String)> {
    let mut got: Vec<(u64, String)> = job["report"]["details"]["problems"]
        .as_array()
        .unwrap_or_else(|| panic!("problems in {job}"))
        .iter()
        .map(|p| {
            (
                p["row"].as_u64().unwrap(),
                p["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    got.sort();
    got
}

fn batch_codes(job: &Value) -> Vec<String> {
    job["report"]["details"]["batch_problems"]
        .as_array()
        .unwrap_or_else(|| panic!("batch_problems in {job}"))
        .iter()
        .map(|p| p["code"].as_str().unwrap().to_owned())
        .collect()
}

async fn a_roster_with_bad_rows_people_enrolled_elsewhere_and_too_few_people_is_told_everything_at_once(
    app: TestApp,
) {
    use calamine::Reader;
    open_window(&app, "nm-inpatient-2022", false).await;
    // Someone already on the 电力 union's roster of this scheme.
    let elsewhere = roster::people(1, 31);
    let power = app.login("union-power").await;
    let power_unit = unit_id(&app, &power, POWER).await;
    let job = upload(
        &app,
        &power,
        &power_unit,
        "nm-inpatient-2022",
        1,
        roster::xlsx(&elsewhere),
    )
    .await;
    assert_eq!(job["status"], "succeeded", "{job}");

    let union = app.login("union-dairy").await;
    let unit = unit_id(&app, &union, DAIRY).await;
    let mut lines = roster::people(6, 32);
    // Row 4: a wrong check character; row 7: the same person as row 5; row 8: enrolled
    // elsewhere. 6 of 10 is under 75%.
    let last = if lines[1].id_number.ends_with('1') {
        '2'
    } else {
        '1'
    };
    lines[1].id_number.replace_range(17..18, &last.to_string());
    lines[4].id_number = lines[2].id_number.clone();
    lines[5] = elsewhere[0].clone();
    let members_before = count(&app, "SELECT COUNT(*) AS n FROM member").await;
    let job = upload(
        &app,
        &union,
        &unit,
        "nm-inpatient-2022",
        10,
        roster::xlsx(&lines),
    )
    .await;
    assert_eq!(job["status"], "failed");
    assert_eq!(job["report"]["code"], "roster_invalid", "{job}");
    assert_eq!(
        row_problems(&job),
        vec![
            (4, "id_number_checksum".to_owned()),
            (7, "duplicate_in_file".to_owned()),
            (8, "already_enrolled".to_owned()),
        ]
    );
    assert_eq!(batch_codes(&job), vec!["participation_too_low"]);
    let batch = &job["report"]["details"]["batch_problems"][0];
    assert_eq!(batch["details"]["required_people"], 8, "{batch}");
    assert!(!batch["message_zh"].as_str().unwrap().is_empty());
    assert_eq!(job["report"]["details"]["rows_with_problems"], 3);
    for p in job["report"]["details"]["problems"].as_array().unwrap() {
        assert!(!p["column"].as_str().unwrap().is_empty(), "{p}");
        assert!(!p["message_zh"].as_str().unwrap().is_empty(), "{p}");
    }
    assert_eq!(
        count(&app, "SELECT COUNT(*) AS n FROM member").await,
        members_before,
        "nothing imported"
    );

    // The report as the clerk's own workbook: a 问题 column filled on each bad row.
    let id = job["id"].as_str().unwrap();
    let mut book = workbook(
        &app,
        &union,
        &format!("/api/v1/import-jobs/{id}/problems.xlsx"),
    )
    .await;
    let first = book.sheet_names()[0].clone();
    let sheet = book.worksheet_range(&first).expect("sheet");
    let rows: Vec<Vec<String>> = sheet
        .rows()
        .map(|r| r.iter().map(|c| c.to_string()).collect())
        .collect();
    let header = rows
        .iter()
        .position(|r| r.iter().any(|c| c == "身份证号码"))
        .expect("the header row");
    let problem_col = rows[header]
        .iter()
        .position(|c| c == "问题")
        .expect("a 问题 column");
    // The clerk's cells are kept as they were.
    assert_eq!(rows[header + 1][1], lines[0].name);
    assert_eq!(rows[header + 1][2], lines[0].id_number);
    for (excel_row, bad) in [
        (3, false),
        (4, true),
        (5, false),
        (6, false),
        (7, true),
        (8, true),
    ] {
        let cell = rows[excel_row - 1]
            .get(problem_col)
            .cloned()
            .unwrap_or_default();
        assert_eq!(!cell.is_empty(), bad, "row {excel_row}: {cell:?}");
    }
    assert!(
        rows[7][problem_col].contains("电力"),
        "{}",
        rows[7][problem_col]
    );
    // The batch problems are in the workbook too.
    let all: String = book
        .sheet_names()
        .iter()
        .filter_map(|n| book.worksheet_range(n).ok())
        .flat_map(|r| {
            r.rows()
                .flat_map(|c| c.iter().map(|x| x.to_string()))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(
        all.contains("参互率"),
        "the participation problem is in the workbook"
    );

    // Another union cannot read it; a job that succeeded has no problems to download.
    let other = app.login("union-hospital").await;
    let res = app
        .client
        .get(app.url(&format!("/api/v1/import-jobs/{id}/problems.xlsx")))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}

// ---- next year's roster in one click ---------------------------------------------------------

/// Every cell of the first sheet, as text, row by row (what Excel shows the clerk).
fn cells_of(bytes: &[u8]) -> Vec<Vec<String>> {
    use calamine::{Reader, Xlsx};
    let mut book: Xlsx<_> =
        calamine::open_workbook_from_rs(std::io::Cursor::new(bytes.to_vec())).expect("xlsx");
    let first = book.sheet_names()[0].clone();
    let range = book.worksheet_range(&first).expect("sheet");
    range
        .rows()
        .map(|r| r.iter().map(|c| c.to_string()).collect())
        .collect()
}

/// The rows written back as a workbook, as the clerk saves it from Excel.
fn cells_to_xlsx(rows: &[Vec<String>]) -> Vec<u8> {
    let mut wb = rust_xlsxwriter::Workbook::new();
    let ws = wb.add_worksheet();
    for (r, row) in rows.iter().enumerate() {
        for (c, v) in row.iter().enumerate() {
            if !v.is_empty() {
                ws.write_string(r as u32, c as u16, v).unwrap();
            }
        }
    }
    wb.save_to_buffer().unwrap()
}

async fn the_renewal_roster_round_trips_leavers_deleted_a_joiner_appended_continuity_kept(
    app: TestApp,
) {
    open_window(&app, "nm-inpatient-2022", false).await;
    let this_year = roster::people(5, 31);
    enrol(&app, "union-power", POWER, "nm-inpatient-2022", &this_year).await;
    // A year on: their period is running and ends in ten days.
    let backend = app.state.db.get_database_backend();
    let sql = format!(
        "UPDATE membership SET coverage_start = '{}', coverage_end = '{}' \
         WHERE scheme_code = 'nm-inpatient-2022' AND coverage_start > '{}'",
        today() - Duration::days(355),
        today() + Duration::days(10),
        today()
    );
    let moved = app
        .state
        .db
        .execute_raw(Statement::from_string(backend, sql))
        .await
        .unwrap();
    assert_eq!(moved.rows_affected(), 5);
    let union = app.login("union-power").await;
    let unit = unit_id(&app, &union, POWER).await;
    let path = format!("/api/v1/organisations/{unit}/renewal-roster.xlsx");

    // Another union's staff do not see it.
    let dairy = app.login("union-dairy").await;
    let res = app
        .client
        .get(app.url(&path))
        .bearer_auth(&dairy)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);

    let res = app
        .client
        .get(app.url(&path))
        .bearer_auth(&union)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let bytes = res.bytes().await.unwrap().to_vec();
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) AS n FROM audit_event WHERE action = 'roster.renewal_downloaded'"
        )
        .await,
        1
    );
    let rows = cells_of(&bytes);
    // The template's headers, under a note telling the clerk what to do.
    let header_at = rows
        .iter()
        .position(|r| r.first().is_some_and(|c| c == "序号"))
        .expect("header row");
    let template = app
        .client
        .get(app.url("/api/v1/roster-template.xlsx"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec();
    let template_rows = cells_of(&template);
    let template_header = template_rows
        .iter()
        .find(|r| r.first().is_some_and(|c| c == "序号"))
        .unwrap();
    assert_eq!(&rows[header_at], template_header);
    assert!(
        rows[..header_at]
            .iter()
            .flatten()
            .any(|c| c.contains("删除") && c.contains("追加")),
        "{:?}",
        &rows[..header_at]
    );
    // Every one of this year's people, with the full ID number.
    let data: Vec<Vec<String>> = rows[header_at + 1..].to_vec();
    let mut ids: Vec<&str> = data.iter().map(|r| r[2].as_str()).collect();
    ids.sort();
    let mut expected: Vec<&str> = this_year.iter().map(|l| l.id_number.as_str()).collect();
    expected.sort();
    assert_eq!(ids, expected);

    // The clerk deletes two leavers and appends one joiner, then uploads it for next year.
    let leavers = [&this_year[1].id_number, &this_year[3].id_number];
    let joiner = roster::people(1, 32).remove(0);
    let mut edited: Vec<Vec<String>> = rows[..=header_at].to_vec();
    edited.extend(data.into_iter().filter(|r| !leavers.contains(&&r[2])));
    // In the template's columns: 序号, 姓名, 身份证号码, 手机号码, 工作单位, 部门, 工号,
    // 是否参加医保, 在职/退休, 备注.
    edited.push(vec![
        "6".into(),
        joiner.name.clone(),
        joiner.id_number.clone(),
        joiner.phone.clone(),
        String::new(),
        String::new(),
        String::new(),
        joiner.insured.clone(),
        joiner.status.clone(),
        String::new(),
    ]);
    // Next year's scheme: enrolment open now, coverage the next calendar year.
    open_window_covering(&app, "nm-inpatient-2025", Some(today().year() + 1)).await;
    let job = upload(
        &app,
        &union,
        &unit,
        "nm-inpatient-2025",
        4,
        cells_to_xlsx(&edited),
    )
    .await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let id = job["enrolment_id"].as_str().unwrap().to_owned();
    let (status, b) = transfer_and_confirm(&app, &union, &id).await;
    assert_eq!(status, 200, "{b}");

    // The batch holds exactly those people: three carried over, the two leavers left, one new.
    let (_, c) = app
        .get(&format!("/api/v1/enrolments/{id}/comparison"), Some(&union))
        .await;
    let names = |key: &str| -> Vec<String> {
        let mut v: Vec<String> = c[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_owned())
            .collect();
        v.sort();
        v
    };
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    assert_eq!(
        names("carried_over"),
        sorted(vec![
            this_year[0].name.clone(),
            this_year[2].name.clone(),
            this_year[4].name.clone()
        ])
    );
    assert_eq!(
        names("left"),
        sorted(vec![this_year[1].name.clone(), this_year[3].name.clone()])
    );
    assert_eq!(names("new"), vec![joiner.name.clone()]);
    // Renewal: those carried over are continuous, in their second consecutive period.
    for (line, continuous, consecutive) in [
        (&this_year[0], true, 2),
        (&this_year[2], true, 2),
        (&this_year[4], true, 2),
        (&joiner, false, 1),
    ] {
        let m = my_membership(&app, &line.id_number, "nm-inpatient-2025").await;
        assert_eq!(m["continuous_renewal"], continuous, "{}", line.name);
        assert_eq!(m["consecutive_periods"], consecutive, "{}", line.name);
    }
}

// ---- what the roster says is kept --------------------------------------------------------------

/// The headers of a clerk's roster with workplaces, departments, employee numbers, remarks and
/// two columns of its own (one holding phone numbers).
const KEPT: [&str; 12] = [
    "序号",
    "姓名",
    "身份证号码",
    "手机号码",
    "工作单位",
    "部门",
    "职工编号",
    "是否参加医保",
    "在职/退休",
    "备注",
    "民族",
    "紧急联系电话",
];

/// A row under [`KEPT`]: `(workplace, department, employee number, remarks, ethnicity,
/// emergency phone)`.
fn kept_row(i: usize, l: &Line, facts: [&str; 6]) -> Vec<String> {
    vec![
        (i + 1).to_string(),
        l.name.clone(),
        l.id_number.clone(),
        l.phone.clone(),
        facts[0].into(),
        facts[1].into(),
        facts[2].into(),
        l.insured.clone(),
        l.status.clone(),
        facts[3].into(),
        facts[4].into(),
        facts[5].into(),
    ]
}

/// The public id of the member with this ID number.
async fn member_id(app: &TestApp, token: &str, id_number: &str) -> String {
    let (status, m) = app
        .post(
            "/api/v1/members/search",
            Some(token),
            &json!({ "id_number": id_number }),
        )
        .await;
    assert_eq!(status, 200, "{m}");
    m["items"][0]["id"].as_str().expect("member").to_owned()
}

/// The row of `rows` (under the header row `header`) whose cell under `key_column` is `key`,
/// as header → text.
fn row_by(
    rows: &[Vec<String>],
    header: usize,
    key_column: &str,
    key: &str,
) -> std::collections::HashMap<String, String> {
    let col = rows[header]
        .iter()
        .position(|c| c == key_column)
        .unwrap_or_else(|| panic!("{key_column} in {:?}", rows[header]));
    let row = rows[header + 1..]
        .iter()
        .find(|r| r.get(col).is_some_and(|c| c == key))
        .unwrap_or_else(|| panic!("a row with {key}"));
    rows[header]
        .iter()
        .cloned()
        .zip(row.iter().cloned().chain(std::iter::repeat(String::new())))
        .collect()
}

async fn what_the_roster_says_is_kept_in_the_ledger_the_member_detail_and_the_renewal_roster(
    app: TestApp,
) {
    open_window(&app, "nm-inpatient-2022", false).await;
    let union = app.login("union-dairy").await;
    let unit = unit_id(&app, &union, DAIRY).await;
    let people = roster::people(3, 61);
    let facts = [
        [
            "乳业集团呼和浩特分公司",
            "财务部",
            "E0012",
            "返聘，联系13812345678",
            "蒙古族",
            "13900001111",
        ],
        ["乳业集团包头分公司", "二车间", "B-207", "", "汉族", ""],
        ["", "", "", "", "", ""],
    ];
    let rows: Vec<Vec<String>> = people
        .iter()
        .zip(facts)
        .enumerate()
        .map(|(i, (l, f))| kept_row(i, l, f))
        .collect();
    let job = upload(
        &app,
        &union,
        &unit,
        "nm-inpatient-2022",
        3,
        sheet(&KEPT, &rows),
    )
    .await;
    assert_eq!(job["status"], "succeeded", "{job}");
    // The phone numbers in free text are masked, and the clerk is told.
    let masked: Vec<(u64, String)> = job["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["code"] == "personal_number_masked")
        .map(|w| {
            (
                w["row"].as_u64().unwrap(),
                w["column"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        masked,
        vec![(3, "备注".to_owned()), (3, "紧急联系电话".to_owned())],
        "{job}"
    );
    let id = job["enrolment_id"].as_str().unwrap().to_owned();
    let (status, b) = transfer_and_confirm(&app, &union, &id).await;
    assert_eq!(status, 200, "{b}");

    // The ledger as JSON: what the roster said, on each membership.
    let first = member_id(&app, &union, &people[0].id_number).await;
    let (status, page) = app
        .get(
            &format!("/api/v1/memberships?organisation={unit}&scheme=nm-inpatient-2022&limit=100"),
            Some(&union),
        )
        .await;
    assert_eq!(status, 200, "{page}");
    let mine = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["member"]["id"] == first.as_str())
        .expect("the membership")
        .clone();
    assert_eq!(
        mine["roster"],
        json!({
            "workplace": "乳业集团呼和浩特分公司",
            "department": "财务部",
            "employee_number": "E0012",
            "remarks": "返聘，联系138****5678",
            "insured": true,
            "extra_columns": { "民族": "蒙古族", "紧急联系电话": "139****1111" },
        }),
        "{mine}"
    );
    // The member's own view does not carry the union's notes.
    let token = app.login(&first).await;
    let (_, own) = app.get("/api/v1/me/memberships", Some(&token)).await;
    assert!(own["items"][0].get("roster").is_none(), "{own}");

    // The member detail: every roster line naming them.
    let (status, detail) = app
        .get(&format!("/api/v1/members/{first}"), Some(&union))
        .await;
    assert_eq!(status, 200, "{detail}");
    let line = &detail["roster_lines"][0];
    assert_eq!(line["enrolment_id"], id.as_str(), "{detail}");
    assert_eq!(line["status"], "confirmed");
    assert_eq!(line["row"], 3);
    assert_eq!(line["workplace"], "乳业集团呼和浩特分公司");
    assert_eq!(line["department"], "财务部");
    assert_eq!(line["employee_number"], "E0012");
    assert_eq!(line["extra_columns"]["民族"], "蒙古族");
    let (_, self_view) = app
        .get(&format!("/api/v1/members/{first}"), Some(&token))
        .await;
    assert_eq!(self_view["roster_lines"], json!([]), "{self_view}");

    // The ledger workbook: the union and the workplace apart, the other columns echoed.
    let association = app.login("association").await;
    let res = app
        .client
        .get(app.url(&format!(
            "/api/v1/organisations/{unit}/ledger.xlsx?scheme=nm-inpatient-2022"
        )))
        .bearer_auth(&association)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let ledger = cells_of(&res.bytes().await.unwrap());
    let header = ledger
        .iter()
        .position(|r| r.first().is_some_and(|c| c == "序号"))
        .expect("header");
    let second = row_by(&ledger, header, "身份证号码", &people[1].id_number);
    assert_eq!(second["基层工会"], DAIRY);
    assert_eq!(second["工作单位"], "乳业集团包头分公司");
    assert_eq!(second["部门"], "二车间");
    assert_eq!(second["工号"], "B-207");
    assert_eq!(second["民族"], "汉族");
    let first_row = row_by(&ledger, header, "身份证号码", &people[0].id_number);
    assert_eq!(first_row["紧急联系电话"], "139****1111");
    assert_eq!(first_row["备注"], "返聘，联系138****5678");

    // Next year's roster carries them, and uploaded back keeps them again.
    let path = format!("/api/v1/organisations/{unit}/renewal-roster.xlsx?scheme=nm-inpatient-2022");
    let res = app
        .client
        .get(app.url(&path))
        .bearer_auth(&union)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let renewal = cells_of(&res.bytes().await.unwrap());
    let header = renewal
        .iter()
        .position(|r| r.first().is_some_and(|c| c == "序号"))
        .expect("header");
    let again = row_by(&renewal, header, "身份证号码", &people[1].id_number);
    assert_eq!(again["工作单位"], "乳业集团包头分公司");
    assert_eq!(again["部门"], "二车间");
    assert_eq!(again["工号"], "B-207");
    assert_eq!(again["民族"], "汉族");
    open_window_covering(&app, "nm-inpatient-2025", Some(today().year() + 1)).await;
    let renewal_people = (renewal.len() - header - 1) as u32;
    let job = upload(
        &app,
        &union,
        &unit,
        "nm-inpatient-2025",
        renewal_people,
        cells_to_xlsx(&renewal),
    )
    .await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let next = job["enrolment_id"].as_str().unwrap();
    let (_, detail) = app
        .get(
            &format!(
                "/api/v1/members/{}",
                member_id(&app, &union, &people[1].id_number).await
            ),
            Some(&union),
        )
        .await;
    let line = &detail["roster_lines"][0];
    assert_eq!(line["enrolment_id"], next, "{detail}");
    assert_eq!(line["status"], "submitted");
    assert_eq!(line["workplace"], "乳业集团包头分公司");
    assert_eq!(line["department"], "二车间");
    assert_eq!(line["employee_number"], "B-207");
    assert_eq!(line["extra_columns"], json!({ "民族": "汉族" }), "{detail}");
}

// ---- refused and withdrawn rosters ---------------------------------------------------------------

async fn close(app: &TestApp, token: &str, id: &str, how: &str, reason: &str) -> (u16, Value) {
    let (_, b) = app
        .get(&format!("/api/v1/enrolments/{id}"), Some(token))
        .await;
    app.post(
        &format!("/api/v1/enrolments/{id}/{how}"),
        Some(token),
        &json!({ "reason": reason, "version": b["version"] }),
    )
    .await
}

async fn progress_counts_refused_and_withdrawn_rosters_until_their_people_are_on_a_roster_again(
    app: TestApp,
) {
    use calamine::Reader;
    let union = app.login("union-dairy").await;
    let association = app.login("association").await;
    let unit = unit_id(&app, &union, DAIRY).await;
    let before = own_progress(&app, &union).await;
    assert_eq!(before["refused"], 0, "{before}");
    let three = roster::people(3, 71);
    let job = upload(
        &app,
        &union,
        &unit,
        "nm-inpatient-2025",
        3,
        roster::xlsx(&three),
    )
    .await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let first = job["enrolment_id"].as_str().unwrap().to_owned();

    // The union withdraws it to correct it: nobody awaits any more, three are refused.
    let (status, b) = close(&app, &union, &first, "withdraw", "漏报一人，撤回重报").await;
    assert_eq!(status, 200, "{b}");
    assert_eq!(b["status"], "withdrawn");
    assert_eq!(b["closed_reason"], "漏报一人，撤回重报");
    let line = own_progress(&app, &union).await;
    assert_eq!(
        (line["awaiting"].as_i64(), line["refused"].as_i64()),
        (Some(0), Some(3)),
        "{line}"
    );
    let (status, again) = close(&app, &union, &first, "withdraw", "再次撤回").await;
    assert_eq!(status, 409, "{again}");
    assert_eq!(again["error"]["code"], "wrong_state");

    // The corrected roster names the same people (no longer "already enrolled") and one more.
    let mut four = three.clone();
    four.extend(roster::people(1, 72));
    let job = upload(
        &app,
        &union,
        &unit,
        "nm-inpatient-2025",
        4,
        roster::xlsx(&four),
    )
    .await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let second = job["enrolment_id"].as_str().unwrap().to_owned();
    let line = own_progress(&app, &union).await;
    assert_eq!(
        (line["awaiting"].as_i64(), line["refused"].as_i64()),
        (Some(4), Some(0)),
        "{line}"
    );

    // Transfer recorded: only the association can end it now; it refuses (wrong amount).
    let (_, b) = app
        .get(&format!("/api/v1/enrolments/{second}"), Some(&union))
        .await;
    let (status, b) = app
        .post(
            &format!("/api/v1/enrolments/{second}/transfer"),
            Some(&union),
            &json!({ "reference": "T-1", "version": b["version"] }),
        )
        .await;
    assert_eq!(status, 200, "{b}");
    let (status, _) = close(&app, &union, &second, "withdraw", "想撤回").await;
    assert_eq!(status, 409);
    let (status, _) = close(&app, &union, &second, "refuse", "工会不能退回").await;
    assert_eq!(status, 403);
    let (status, b) = close(
        &app,
        &association,
        &second,
        "refuse",
        "转账金额不符，请核对后重报",
    )
    .await;
    assert_eq!(status, 200, "{b}");
    assert_eq!(b["status"], "refused");
    let line = own_progress(&app, &union).await;
    assert_eq!(
        (line["awaiting"].as_i64(), line["refused"].as_i64()),
        (Some(0), Some(4)),
        "{line}"
    );
    assert_eq!(line["enrolled"], before["enrolled"]);
    let mut book = workbook(&app, &union, "/api/v1/targets/progress.xlsx?year=2025").await;
    let name = book.sheet_names()[0].clone();
    let rows: Vec<Vec<String>> = book
        .worksheet_range(&name)
        .expect("sheet")
        .rows()
        .map(|r| r.iter().map(|c| c.to_string()).collect())
        .collect();
    let header = rows
        .iter()
        .position(|r| r.iter().any(|c| c == "退回未重报(人)"))
        .expect("a refused column");
    let col = rows[header]
        .iter()
        .position(|c| c == "退回未重报(人)")
        .unwrap();
    assert_eq!(rows[header + 1][col], "4");
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) AS n FROM audit_event WHERE action IN ('enrolment.refused', 'enrolment.withdrawn')"
        )
        .await,
        2
    );

    // Submitted again and confirmed: enrolled, nobody refused.
    let job = upload(
        &app,
        &union,
        &unit,
        "nm-inpatient-2025",
        4,
        roster::xlsx(&four),
    )
    .await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let (status, b) =
        transfer_and_confirm(&app, &union, job["enrolment_id"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{b}");
    let line = own_progress(&app, &union).await;
    assert_eq!(
        (line["awaiting"].as_i64(), line["refused"].as_i64()),
        (Some(0), Some(0)),
        "{line}"
    );
    assert_eq!(
        line["enrolled"].as_i64().unwrap(),
        before["enrolled"].as_i64().unwrap() + 4
    );
}

on_both_backends_with!(
    refusals,
    in_autumn_2024 => progress_counts_refused_and_withdrawn_rosters_until_their_people_are_on_a_roster_again,
);
