//! Wujin's individual enrolment: a member signs the payment authorisation on the phone, the
//! association deducts the fee through the bank, each success enrols and each failure tells
//! why, and a revocation stops deductions from the next month.

use std::io::Cursor;

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, TimeZone, Utc};
use huzhu::domain::IdNumber;
use huzhu::engine::YearMonth;
use huzhu::service::{authorisation, deduction};
use huzhu_tests::claim_flow::first_period_of;
use huzhu_tests::harness::TestApp;
use huzhu_tests::on_both_backends_with;
use huzhu_tests::roster::bank_card;
use image::{ImageBuffer, ImageFormat, Rgb, Rgba};
use reqwest::multipart::{Form, Part};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, TransactionTrait};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const UNIT: &str = "赛罕区教育局工会";
const SCHEME: &str = "wj-2022";
/// The day the Wujin tests rehearse (Beijing time): inside wj-2022's enrolment window
/// (2021-10-11 … 2021-12-25), for coverage year 2022.
const REHEARSAL: &str = "2021-11-15";

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn ym(s: &str) -> YearMonth {
    YearMonth::parse(s).unwrap()
}

/// The service's calendar pinned inside the enrolment window.
fn rehearsal(s: &mut huzhu::settings::Settings) {
    s.clock.today = Some(d(REHEARSAL));
}

/// The service's calendar pinned before the enrolment window opens (2021-10-11).
fn before_it_opens(s: &mut huzhu::settings::Settings) {
    s.clock.today = Some(d("2021-09-20"));
}

/// The service's calendar pinned to the day the issue was reported, years after the window.
fn years_later(s: &mut huzhu::settings::Settings) {
    s.clock.today = Some(d("2026-12-05"));
}

const PHONE_UA: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0) MicroMessenger/8.0.50";

// ---- pictures, made here so they are real --------------------------------------------------

fn signature_png() -> Vec<u8> {
    let mut img = ImageBuffer::from_pixel(320, 120, Rgba([255u8, 255, 255, 0]));
    for x in 20..300 {
        let y = 60 + ((x as f32 / 25.0).sin() * 30.0) as u32;
        img.put_pixel(x, y, Rgba([0, 0, 0, 255]));
        img.put_pixel(x, y + 1, Rgba([0, 0, 0, 255]));
    }
    encode(&image::DynamicImage::ImageRgba8(img), ImageFormat::Png)
}

fn blank_png() -> Vec<u8> {
    let img = ImageBuffer::from_pixel(320, 120, Rgba([255u8, 255, 255, 255]));
    encode(&image::DynamicImage::ImageRgba8(img), ImageFormat::Png)
}

fn id_card_jpeg() -> Vec<u8> {
    let img = ImageBuffer::from_fn(428, 270, |x, y| {
        Rgb([(x % 256) as u8, (y % 256) as u8, ((x + y) % 256) as u8])
    });
    encode(&image::DynamicImage::ImageRgb8(img), ImageFormat::Jpeg)
}

fn encode(img: &image::DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, format).expect("encode");
    out.into_inner()
}

fn pdf_bytes() -> Vec<u8> {
    b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n".to_vec()
}

// ---- people ------------------------------------------------------------------------------

/// A valid ID number of 武进区 (320412), unlike the demo's.
fn id_number(seq: u32) -> String {
    let body = format!("3204121985030{}{seq:03}", 1 + seq % 9);
    "0123456789X"
        .chars()
        .map(|c| format!("{body}{c}"))
        .find(|candidate| IdNumber::parse(candidate).is_ok())
        .expect("an ID number")
}

struct Person {
    pid: String,
    name: String,
    id_number: String,
    card: String,
}

async fn unit_id(app: &TestApp) -> String {
    let admin = app.login("admin").await;
    app.unit_id(&admin, UNIT).await
}

/// A new worker of the unit (not enrolled in anything yet), added by the union's clerk.
async fn new_member(app: &TestApp, seq: u32, name: &str) -> Person {
    new_member_in(app, "union-education", UNIT, seq, name).await
}

/// A new worker of another unit union, added by that union's clerk.
async fn new_member_in(app: &TestApp, clerk: &str, unit: &str, seq: u32, name: &str) -> Person {
    let clerk = app.login(clerk).await;
    let admin = app.login("admin").await;
    let unit = app.unit_id(&admin, unit).await;
    let id_number = id_number(seq);
    let (status, created) = app
        .post(
            "/api/v1/members",
            Some(&clerk),
            &json!({ "organisation_id": unit, "name": name, "id_number": id_number }),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    Person {
        pid: created["id"].as_str().unwrap().to_owned(),
        name: name.to_owned(),
        id_number,
        card: bank_card(seq),
    }
}

/// A demo member of the unit, already enrolled in wj-2022 for 2022.
async fn enrolled_demo_member(app: &TestApp) -> String {
    let admin = app.login("admin").await;
    let unit = unit_id(app).await;
    let (_, page) = app
        .get(
            &format!("/api/v1/members?organisation={unit}"),
            Some(&admin),
        )
        .await;
    page["items"][0]["id"].as_str().unwrap().to_owned()
}

// ---- signing -----------------------------------------------------------------------------

struct Text {
    version: i64,
    sha256: String,
}

async fn current_text(app: &TestApp) -> Text {
    let (status, text) = app
        .get(&format!("/api/v1/authorisation-texts/{SCHEME}"), None)
        .await;
    assert_eq!(status, 200, "{text}");
    Text {
        version: text["version"].as_i64().unwrap(),
        sha256: text["sha256"].as_str().unwrap().to_owned(),
    }
}

struct Signing {
    fields: Vec<(&'static str, String)>,
    files: Vec<(&'static str, &'static str, Vec<u8>)>,
}

impl Signing {
    fn valid(text: &Text, card: &str) -> Signing {
        Signing {
            fields: vec![
                ("scheme_code", SCHEME.to_owned()),
                ("text_version", text.version.to_string()),
                ("text_sha256", text.sha256.clone()),
                ("consent", "true".to_owned()),
                ("bank_card", card.to_owned()),
            ],
            files: vec![
                ("id_card_front", "front.jpg", id_card_jpeg()),
                ("id_card_back", "back.jpg", id_card_jpeg()),
                ("signature", "signature.png", signature_png()),
            ],
        }
    }

    fn set(mut self, name: &'static str, value: &str) -> Signing {
        self.fields.retain(|(n, _)| *n != name);
        self.fields.push((name, value.to_owned()));
        self
    }

    fn without(mut self, name: &str) -> Signing {
        self.fields.retain(|(n, _)| *n != name);
        self.files.retain(|(n, _, _)| *n != name);
        self
    }

    fn file(mut self, name: &'static str, filename: &'static str, bytes: Vec<u8>) -> Signing {
        self.files.retain(|(n, _, _)| *n != name);
        self.files.push((name, filename, bytes));
        self
    }

    fn form(self) -> Form {
        let mut form = Form::new();
        for (name, value) in self.fields {
            form = form.text(name, value);
        }
        for (name, filename, bytes) in self.files {
            // The client's content type says PNG whatever the bytes are: the server must not care.
            let part = Part::bytes(bytes)
                .file_name(filename)
                .mime_str("image/png")
                .unwrap();
            form = form.part(name, part);
        }
        form
    }
}

async fn sign(app: &TestApp, token: &str, signing: Signing) -> (u16, Value) {
    sign_with(app, token, signing, &[]).await
}

async fn sign_with(
    app: &TestApp,
    token: &str,
    signing: Signing,
    headers: &[(&str, &str)],
) -> (u16, Value) {
    let mut req = app
        .client
        .post(app.url("/api/v1/me/authorisations"))
        .bearer_auth(token)
        .header("user-agent", PHONE_UA)
        .multipart(signing.form());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = req.send().await.expect("request");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Signs as `person` (demo sign-in) and returns the authorisation.
async fn signed(app: &TestApp, person: &Person) -> Value {
    let token = app.login(&person.pid).await;
    let text = current_text(app).await;
    let (status, body) = sign(app, &token, Signing::valid(&text, &person.card)).await;
    assert_eq!(status, 201, "{body}");
    body
}

// ---- looking inside ----------------------------------------------------------------------

async fn count(app: &TestApp, table: &str) -> i64 {
    app.count(&format!("SELECT COUNT(*) AS n FROM {table}"))
        .await
}

async fn stored_objects(app: &TestApp) -> Vec<String> {
    let mut keys: Vec<String> = app
        .state
        .storage
        .list_with("authorisations/")
        .recursive(true)
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|e| !e.path().ends_with('/'))
        .map(|e| e.path().to_owned())
        .collect();
    keys.sort();
    keys
}

async fn member_row(app: &TestApp, pid: &str) -> entity::member::Model {
    entity::member::Entity::find()
        .filter(entity::member::Column::Pid.eq(pid))
        .one(&app.state.db)
        .await
        .unwrap()
        .expect("member")
}

async fn outbox_of(app: &TestApp, pid: &str) -> Vec<entity::outbox::Model> {
    let m = member_row(app, pid).await;
    entity::outbox::Entity::find()
        .filter(entity::outbox::Column::MemberId.eq(m.id))
        .all(&app.state.db)
        .await
        .unwrap()
}

fn next_month(m: YearMonth) -> YearMonth {
    let first = m.first_day();
    YearMonth::from(first + chrono::Days::new(u64::from(m.days())))
}

/// A day of a month.
fn day(m: YearMonth, day: u32) -> NaiveDate {
    m.first_day().with_day(day).unwrap()
}

/// An instant on a day of a month, Beijing time.
fn on(m: YearMonth, day: u32) -> DateTime<Utc> {
    let d = m.first_day();
    FixedOffset::east_opt(8 * 3600)
        .unwrap()
        .with_ymd_and_hms(d.year(), d.month(), day, 10, 0, 0)
        .unwrap()
        .with_timezone(&Utc)
}

async fn download(app: &TestApp, token: &str, batch: &str) -> (u16, String, Vec<Vec<String>>) {
    let (status, content_type, bytes) = app
        .download(&format!("/api/v1/deductions/{batch}/file"), token)
        .await;
    if status != 200 {
        return (status, content_type, Vec::new());
    }
    assert!(bytes.starts_with("\u{feff}".as_bytes()), "a BOM for Excel");
    let text = String::from_utf8(bytes[3..].to_vec()).unwrap();
    let rows = text
        .lines()
        .map(|l| l.split(',').map(str::to_owned).collect())
        .collect();
    (status, content_type, rows)
}

async fn post_result(app: &TestApp, token: &str, batch: &str, csv: &str) -> (u16, Value) {
    let res = app
        .client
        .post(app.url(&format!("/api/v1/deductions/{batch}/result")))
        .bearer_auth(token)
        .header("content-type", "text/csv")
        .body(csv.to_owned())
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

// ---- the tests ---------------------------------------------------------------------------

async fn the_authorisation_text_is_published_with_its_hash(app: TestApp) {
    let (status, text) = app
        .get(&format!("/api/v1/authorisation-texts/{SCHEME}"), None)
        .await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(text["version"], 1);
    let body = text["body"].as_str().unwrap();
    assert_eq!(
        text["sha256"].as_str().unwrap(),
        hex::encode(Sha256::digest(body.as_bytes()))
    );
    for party in [
        "参互职工",
        "武进区职工医疗互助保障服务中心",
        "代收银行",
        "见证方",
    ] {
        assert!(body.contains(party), "{party}");
    }
    assert!(body.contains("30 元"));
    let (status, err) = app
        .get("/api/v1/authorisation-texts/nm-inpatient-2025", None)
        .await;
    assert_eq!(status, 404);
    assert_eq!(err["error"]["code"], "not_found");
}

async fn a_signature_is_refused_until_every_part_is_right_and_then_kept_unaltered(app: TestApp) {
    let person = new_member(&app, 1, "周晓东").await;
    // Signed in through WeChat, so the record keeps the openid.
    let code = app.wechat.login_code("openid-wujin-zhou");
    let (status, login) = app
        .post(
            "/api/v1/auth/wechat",
            None,
            &json!({ "code": code, "name": person.name, "id_number": person.id_number }),
        )
        .await;
    assert_eq!(status, 200, "{login}");
    let token = login["token"].as_str().unwrap().to_owned();
    let text = current_text(&app).await;
    let valid = || Signing::valid(&text, &person.card);

    let refused: Vec<(Signing, u16, &str)> = vec![
        (
            valid().set("text_sha256", &"0".repeat(64)),
            409,
            "text_changed",
        ),
        (valid().set("text_version", "0"), 409, "text_changed"),
        (valid().without("consent"), 422, "field_missing"),
        (valid().set("consent", "false"), 422, "consent_required"),
        (
            valid().set("bank_card", "6217000000000000001"),
            422,
            "bank_card_checksum",
        ),
        (
            valid().file("id_card_front", "front.png", pdf_bytes()),
            422,
            "file_type_not_allowed",
        ),
        (
            valid().file("signature", "signature.png", id_card_jpeg()),
            422,
            "file_type_not_allowed",
        ),
        (
            valid().file("signature", "signature.png", blank_png()),
            422,
            "signature_blank",
        ),
        (valid().without("id_card_back"), 422, "field_missing"),
    ];
    for (signing, status, code) in refused {
        let (got, err) = sign(&app, &token, signing).await;
        assert_eq!(
            (got, err["error"]["code"].as_str()),
            (status, Some(code)),
            "{err}"
        );
        if code == "text_changed" {
            assert_eq!(
                err["error"]["details"]["current_sha256"],
                text.sha256.as_str()
            );
        }
        if code == "file_type_not_allowed" {
            let message = err["error"]["message"].as_str().unwrap();
            assert!(
                message.contains("只接受") && message.contains("only"),
                "{message}"
            );
        }
    }
    // Nothing was stored or recorded by any refused attempt.
    assert!(stored_objects(&app).await.is_empty());
    assert_eq!(count(&app, "payment_authorisation").await, 0);

    // Staff do not sign.
    let staff = app.login("association").await;
    let (status, _) = sign(&app, &staff, valid()).await;
    assert_eq!(status, 403);

    // A forged X-Forwarded-For is ignored unless the proxy is trusted.
    let (status, body) =
        sign_with(&app, &token, valid(), &[("x-forwarded-for", "203.0.113.9")]).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["status"], "active");
    assert_eq!(body["scheme_code"], SCHEME);
    assert_eq!(body["text_sha256"], text.sha256.as_str());
    assert_eq!(body["effective_until"], Value::Null);
    let masked = body["bank_card"].as_str().unwrap();
    assert!(masked.contains('*') && !masked.contains(&person.card[6..15]));

    let row = entity::payment_authorisation::Entity::find()
        .one(&app.state.db)
        .await
        .unwrap()
        .expect("the record");
    assert_eq!(row.openid, "openid-wujin-zhou");
    assert_eq!(row.ip_address, "127.0.0.1");
    assert_eq!(row.user_agent, PHONE_UA);
    assert!(row.consent);
    assert_eq!(row.text_sha256, text.sha256);
    assert!(!row.bank_card_cipher.contains(&person.card));
    assert_eq!(
        row.signature_sha256,
        hex::encode(Sha256::digest(signature_png()))
    );
    let objects = stored_objects(&app).await;
    assert_eq!(objects.len(), 3, "{objects:?}");
    let signature = app.state.storage.read(&row.signature_key).await.unwrap();
    assert_eq!(
        hex::encode(Sha256::digest(signature.to_vec())),
        row.signature_sha256
    );
    assert!(
        row.signature_key
            .starts_with(&format!("authorisations/{}/", row.pid))
    );

    // One active authorisation per member and scheme.
    let (status, err) = sign(&app, &token, valid()).await;
    assert_eq!(status, 409);
    assert_eq!(err["error"]["code"], "authorisation_active");
    assert_eq!(stored_objects(&app).await.len(), 3);

    let (status, mine) = app.get("/api/v1/me/authorisations", Some(&token)).await;
    assert_eq!(status, 200);
    assert_eq!(mine.as_array().unwrap().len(), 1);
    assert_eq!(mine[0]["id"], body["id"]);
    assert_eq!(mine[0]["bank_card"], masked);
    // Another member sees none of it, and staff have no "my authorisations".
    let other = app.login(&enrolled_demo_member(&app).await).await;
    let (_, theirs) = app.get("/api/v1/me/authorisations", Some(&other)).await;
    assert_eq!(theirs, json!([]));
    assert_eq!(
        app.get("/api/v1/me/authorisations", Some(&staff)).await.0,
        403
    );
}

async fn the_association_deducts_and_each_result_enrols_or_tells_why(app: TestApp) {
    let zhou = new_member(&app, 2, "周晓东").await;
    let wu = new_member(&app, 3, "吴丽娜").await;
    let signed_zhou = signed(&app, &zhou).await;
    signed(&app, &wu).await;
    // A demo member already enrolled for 2022 signs too: nothing to deduct from them.
    let demo = enrolled_demo_member(&app).await;
    let demo_token = app.login(&demo).await;
    let text = current_text(&app).await;
    let (status, _) = sign(&app, &demo_token, Signing::valid(&text, &bank_card(99))).await;
    assert_eq!(status, 201);

    assert!(signed_zhou["signed_at"].is_string());
    let month = ym("2021-11");
    let association = app.login("association").await;
    let clerk = app.login("union-education").await;
    let request = json!({ "scheme_code": SCHEME, "month": month.to_string() });
    assert_eq!(
        app.post("/api/v1/deductions", Some(&clerk), &request)
            .await
            .0,
        403
    );
    let (status, err) = app
        .post(
            "/api/v1/deductions",
            Some(&association),
            &json!({ "scheme_code": SCHEME, "month": "2021-13" }),
        )
        .await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (422, Some("month_invalid"))
    );
    let (status, err) = app
        .post(
            "/api/v1/deductions",
            Some(&association),
            &json!({ "scheme_code": "nm-inpatient-2025", "month": month.to_string() }),
        )
        .await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (422, Some("not_individual_scheme"))
    );

    let (status, batch) = app
        .post("/api/v1/deductions", Some(&association), &request)
        .await;
    assert_eq!(status, 201, "{batch}");
    assert_eq!(batch["item_count"], 2);
    assert_eq!(batch["total"], "60.00");
    assert_eq!(batch["status"], "exported");
    let (status, err) = app
        .post("/api/v1/deductions", Some(&association), &request)
        .await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (409, Some("batch_exists"))
    );
    let batch_id = batch["id"].as_str().unwrap();

    // The bank's file: full numbers, a control total.
    assert_eq!(download(&app, &clerk, batch_id).await.0, 403);
    let (status, content_type, rows) = download(&app, &association, batch_id).await;
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/csv"), "{content_type}");
    assert_eq!(
        rows[0],
        ["序号", "流水号", "姓名", "身份证号", "银行卡号", "金额"]
    );
    let details = &rows[1..rows.len() - 1];
    assert_eq!(details.len(), 2);
    let line_of = |p: &Person| {
        details
            .iter()
            .find(|r| r[2] == p.name && r[3] == p.id_number)
            .unwrap_or_else(|| panic!("{} in {rows:?}", p.name))
            .clone()
    };
    let (zhou_line, wu_line) = (line_of(&zhou), line_of(&wu));
    assert_eq!(zhou_line[4], zhou.card);
    assert_eq!(zhou_line[5], "30.00");
    assert_eq!(wu_line[4], wu.card);
    let total: i64 = details
        .iter()
        .map(|r| (r[5].parse::<f64>().unwrap() * 100.0).round() as i64)
        .sum();
    let control = rows.last().unwrap();
    assert_eq!(control[0], "合计");
    assert_eq!(control[1], details.len().to_string());
    assert_eq!(control[2], format!("{}.{:02}", total / 100, total % 100));
    assert_eq!(control[2], "60.00");

    // Bad result files are refused line by line and change nothing.
    let (zhou_serial, wu_serial) = (zhou_line[1].clone(), wu_line[1].clone());
    let before = (count(&app, "membership").await, count(&app, "outbox").await);
    let bad_files = [
        (
            format!(
                "流水号,结果,失败原因\n{zhou_serial},成功,\n202101FFFFFF000009,失败,余额不足\n合计,2\n"
            ),
            vec!["unknown_serial", "serial_without_result"],
        ),
        (
            format!("{zhou_serial},成功,\n{wu_serial},失败,余额不足\n合计,3\n"),
            vec!["count_mismatch"],
        ),
        (
            format!("{zhou_serial},成功,\n{zhou_serial},成功,\n{wu_serial},失败,\n合计,3\n"),
            vec!["reason_missing"],
        ),
        (
            format!("{zhou_serial},成功,\n{wu_serial},失败,余额不足\n"),
            vec!["total_missing"],
        ),
    ];
    for (file, codes) in bad_files {
        let (status, err) = post_result(&app, &association, batch_id, &file).await;
        assert_eq!(status, 422, "{err}");
        assert_eq!(err["error"]["code"], "result_file_invalid");
        let got: Vec<&str> = err["error"]["details"]["problems"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["code"].as_str().unwrap())
            .collect();
        assert_eq!(got, codes, "{file}");
    }
    let (status, err) = post_result(
        &app,
        &association,
        batch_id,
        &format!("{zhou_serial},成功,\n{zhou_serial},成功,\n{wu_serial},失败,余额不足\n合计,3\n"),
    )
    .await;
    assert_eq!(status, 422);
    let problem = &err["error"]["details"]["problems"][0];
    assert_eq!(problem["code"], "duplicate_serial");
    assert_eq!(problem["line"], 2);
    assert_eq!(problem["serial"], zhou_serial.as_str());
    assert_eq!(
        (count(&app, "membership").await, count(&app, "outbox").await),
        before
    );
    let (_, still) = app
        .get(
            &format!("/api/v1/deductions/{batch_id}"),
            Some(&association),
        )
        .await;
    assert_eq!(still["status"], "exported");

    // One success, one failure.
    let result = format!(
        "\u{feff}流水号,结果,失败原因\r\n{zhou_serial},成功,\r\n{wu_serial},失败,账户余额不足\r\n合计,2\r\n"
    );
    let (status, imported) = post_result(&app, &association, batch_id, &result).await;
    assert_eq!(status, 200, "{imported}");
    assert_eq!(imported["succeeded"], 1);
    assert_eq!(imported["failed"], 1);
    assert_eq!(imported["batch"]["status"], "result_imported");

    let zhou_row = member_row(&app, &zhou.pid).await;
    let memberships = entity::membership::Entity::find()
        .filter(entity::membership::Column::MemberId.eq(zhou_row.id))
        .all(&app.state.db)
        .await
        .unwrap();
    assert_eq!(memberships.len(), 1);
    let m = &memberships[0];
    assert_eq!(m.scheme_code, SCHEME);
    assert_eq!(
        m.coverage_start,
        NaiveDate::from_ymd_opt(2022, 1, 1).unwrap()
    );
    assert_eq!(
        m.coverage_end,
        NaiveDate::from_ymd_opt(2022, 12, 31).unwrap()
    );
    assert_eq!(
        (m.fee_fen, m.source.as_str(), m.status.as_str()),
        (3000, "individual", "active")
    );
    assert_eq!(m.consecutive_periods, 1);
    assert_eq!(m.organisation_id, zhou_row.organisation_id);
    let wu_row = member_row(&app, &wu.pid).await;
    assert_eq!(
        entity::membership::Entity::find()
            .filter(entity::membership::Column::MemberId.eq(wu_row.id))
            .all(&app.state.db)
            .await
            .unwrap()
            .len(),
        0
    );

    let told_zhou = outbox_of(&app, &zhou.pid).await;
    assert_eq!(told_zhou.len(), 1);
    assert_eq!(told_zhou[0].occasion, "enrolment_confirmed");
    assert!(told_zhou[0].dedupe_key.starts_with("deduction:"));
    let payload: Value = serde_json::from_str(&told_zhou[0].payload).unwrap();
    assert_eq!(payload["coverage_start"], "2022-01-01");
    assert_eq!(payload["membership_id"], m.pid.as_str());
    let told_wu = outbox_of(&app, &wu.pid).await;
    assert_eq!(told_wu.len(), 1);
    assert_eq!(told_wu[0].occasion, "deduction_failed");
    let payload: Value = serde_json::from_str(&told_wu[0].payload).unwrap();
    assert_eq!(payload["reason"], "账户余额不足");
    assert_eq!(payload["amount"], "30.00");
    let item = entity::deduction_item::Entity::find()
        .filter(entity::deduction_item::Column::MemberId.eq(wu_row.id))
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(item.status, "failed");
    assert_eq!(item.failure_reason.as_deref(), Some("账户余额不足"));

    // Importing twice is a conflict and changes nothing.
    let outbox_after = count(&app, "outbox").await;
    let (status, err) = post_result(&app, &association, batch_id, &result).await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (409, Some("result_already_imported"))
    );
    assert_eq!(count(&app, "outbox").await, outbox_after);
    assert_eq!(count(&app, "membership").await, before.0 + 1);
}

async fn a_revocation_stops_deductions_from_the_next_month(app: TestApp) {
    let zheng = new_member(&app, 4, "郑文博").await;
    let wang = new_member(&app, 5, "王海燕").await;
    let signed_zheng = signed(&app, &zheng).await;
    let signed_wang = signed(&app, &wang).await;
    let zheng_token = app.login(&zheng.pid).await;
    let wang_token = app.login(&wang.pid).await;
    let db = &app.state.db;
    let pii = &app.state.pii;

    // Nobody revokes another member's authorisation: it is simply not there.
    let wang_auth = signed_wang["id"].as_str().unwrap();
    let (status, _) = app
        .post(
            &format!("/api/v1/me/authorisations/{wang_auth}/revoke"),
            Some(&zheng_token),
            &json!({}),
        )
        .await;
    assert_eq!(status, 404);

    // Dates under the test's control, inside the enrolment window: month M is 2021-11. 郑
    // revokes on the 15th of M; 王 keeps the authorisation.
    let m = ym("2021-11");
    let m1 = next_month(m);
    let revoked = authorisation::revoke(
        db,
        pii,
        &zheng.pid,
        signed_zheng["id"].as_str().unwrap(),
        on(m, 15),
        day(m, 15),
    )
    .await
    .unwrap();
    assert_eq!(revoked.effective_until, Some(authorisation::last_day(m)));

    // Month M still deducts 郑 (and 王).
    let txn = db.begin().await.unwrap();
    let batch_m = deduction::create_batch(&txn, SCHEME, m, "test", on(m, 20), day(m, 20))
        .await
        .unwrap();
    txn.commit().await.unwrap();
    let lines = deduction::file_lines(db, pii, &batch_m).await.unwrap();
    let names: Vec<&str> = lines.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["郑文博", "王海燕"]);
    // Both fail (so neither is enrolled): only the revocation can keep 郑 out of M+1.
    let result = format!(
        "{},失败,余额不足\n{},失败,余额不足\n合计,2\n",
        lines[0].serial, lines[1].serial
    );
    let txn = db.begin().await.unwrap();
    deduction::import_result(&txn, &batch_m.pid, result.as_bytes(), on(m, 25), day(m, 25))
        .await
        .unwrap();
    txn.commit().await.unwrap();

    // A month that has not begun has no batch yet.
    let txn = db.begin().await.unwrap();
    assert!(matches!(
        deduction::create_batch(&txn, SCHEME, m1, "test", on(m, 28), day(m, 28)).await,
        Err(deduction::BatchError::MonthNotStarted)
    ));
    // Month M+1 deducts 王 only.
    let batch_m1 = deduction::create_batch(&txn, SCHEME, m1, "test", on(m1, 3), day(m1, 3))
        .await
        .unwrap();
    txn.commit().await.unwrap();
    let lines = deduction::file_lines(db, pii, &batch_m1).await.unwrap();
    let names: Vec<&str> = lines.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["王海燕"]);
    assert_eq!(batch_m1.item_count, 1);

    // 郑 sees the revocation.
    let (_, mine) = app
        .get("/api/v1/me/authorisations", Some(&zheng_token))
        .await;
    assert_eq!(mine[0]["status"], "revoked");
    assert_eq!(
        mine[0]["effective_until"],
        authorisation::last_day(m).to_string()
    );

    // Through the API, on the service's calendar (2021-11-15): effective until 30 November,
    // whatever the wall clock says.
    let path = format!("/api/v1/me/authorisations/{wang_auth}/revoke");
    let (status, body) = app.post(&path, Some(&wang_token), &json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "revoked");
    assert_eq!(body["effective_until"], "2021-11-30");
    let (status, err) = app.post(&path, Some(&wang_token), &json!({})).await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (409, Some("already_revoked"))
    );
    // Revoked, so 王 may sign again (a new card, say).
    let text = current_text(&app).await;
    let (status, body) = sign(&app, &wang_token, Signing::valid(&text, &bank_card(55))).await;
    assert_eq!(status, 201, "{body}");
}

async fn two_signatures_at_once_leave_one_record_and_no_stray_files(app: TestApp) {
    let person = new_member(&app, 6, "孙慧敏").await;
    let token = app.login(&person.pid).await;
    let text = current_text(&app).await;
    let (first, second) = tokio::join!(
        sign(&app, &token, Signing::valid(&text, &person.card)),
        sign(&app, &token, Signing::valid(&text, &person.card)),
    );
    let mut statuses = [first.0, second.0];
    statuses.sort_unstable();
    assert_eq!(statuses[0], 201, "{first:?} {second:?}");
    // The loser either saw the winner (409) or, on SQLite, lost the write lock: never a record.
    assert!(matches!(statuses[1], 409 | 500), "{first:?} {second:?}");
    assert_eq!(count(&app, "payment_authorisation").await, 1);
    let row = entity::payment_authorisation::Entity::find()
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    let objects = stored_objects(&app).await;
    assert_eq!(objects.len(), 3, "{objects:?}");
    assert!(objects.iter().all(|k| k.contains(&row.pid)), "{objects:?}");
}

/// Finding 1 of issue 22, reproduced: a worker of 内蒙古电力（集团）有限责任公司工会 — a union that does
/// not take part in wj-2022 — signed the Wujin authorisation (`POST /api/v1/me/authorisations`,
/// 201) and was then in the wj-2022 deduction batch for 30.00. Now signing is refused with
/// `scheme_not_offered` and leaves nothing; once the association allocates wj-2022 to the union
/// (an enrolment target for 2022) the worker may sign; a batch holds only members whose union
/// takes part when it is made.
async fn a_member_whose_union_does_not_take_part_cannot_sign_and_is_never_deducted(app: TestApp) {
    let outsider = new_member_in(
        &app,
        "union-power",
        "内蒙古电力（集团）有限责任公司工会",
        11,
        "钱建国",
    )
    .await;
    let token = app.login(&outsider.pid).await;
    let text = current_text(&app).await;
    let (status, err) = sign(&app, &token, Signing::valid(&text, &outsider.card)).await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (422, Some("scheme_not_offered")),
        "{err}"
    );
    assert_eq!(err["error"]["details"]["coverage_start"], "2022-01-01");
    assert!(stored_objects(&app).await.is_empty());
    assert_eq!(count(&app, "payment_authorisation").await, 0);

    // A member of the Wujin union signs; the batch holds them alone.
    let insider = new_member(&app, 12, "孙立新").await;
    signed(&app, &insider).await;
    let association = app.login("association").await;
    let request = json!({ "scheme_code": SCHEME, "month": "2021-11" });
    let (status, batch) = app
        .post("/api/v1/deductions", Some(&association), &request)
        .await;
    assert_eq!(status, 201, "{batch}");
    assert_eq!(batch["item_count"], 1);

    // The association allocates wj-2022 to the power union for 2022: its worker may sign.
    let power = app
        .unit_id(&association, "内蒙古电力（集团）有限责任公司工会")
        .await;
    let res = app
        .client
        .put(app.url("/api/v1/targets"))
        .bearer_auth(&association)
        .json(&json!({ "organisation_id": power, "year": 2022, "scheme_code": SCHEME, "target_people": 10 }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 204);
    let (status, body) = sign(&app, &token, Signing::valid(&text, &outsider.card)).await;
    assert_eq!(status, 201, "{body}");

    // The allocation is withdrawn before December's batch: the signed worker is left out.
    entity::enrolment_target::Entity::delete_many()
        .exec(&app.state.db)
        .await
        .unwrap();
    let txn = app.state.db.begin().await.unwrap();
    assert!(matches!(
        deduction::create_batch(
            &txn,
            SCHEME,
            ym("2021-12"),
            "test",
            on(ym("2021-12"), 2),
            d("2021-12-02")
        )
        .await,
        Err(deduction::BatchError::NothingToDeduct)
    ));
    txn.commit().await.unwrap();
}

/// Finding 2 of issue 22, reproduced: on 2026-12-05 a worker signs, the officer creates the
/// batch for month 2026-12 (201), the bank answers 成功 and the worker is enrolled for
/// 2022-01-01..2022-12-31 — a year that ended four years earlier. Now the signature itself is
/// refused (`enrolment_closed`: it could only pay for a period nobody may still enrol in) and
/// leaves nothing, the batch is refused too (naming the window's close and the period) and no
/// batch, hence no bank file, exists.
async fn a_deduction_for_a_closed_period_is_refused_before_any_bank_file_exists(app: TestApp) {
    let worker = new_member(&app, 21, "周晓东").await;
    let err = signing_refused(&app, &worker, "enrolment_closed").await;
    assert_eq!(err["error"]["details"]["closes"], "2021-12-25");
    assert_eq!(err["error"]["details"]["coverage_end"], "2022-12-31");
    let err = batch_refused(&app, "2026-12", "enrolment_closed").await;
    assert_eq!(err["error"]["details"]["closes"], "2021-12-25");
    assert_eq!(err["error"]["details"]["coverage_start"], "2022-01-01");
    assert_eq!(err["error"]["details"]["coverage_end"], "2022-12-31");
    assert_eq!(count(&app, "deduction_item").await, 0);
    // A late window cannot be opened into a period that is over either.
    let association = app.login("association").await;
    let (status, err) = app
        .post(
            "/api/v1/deduction-windows",
            Some(&association),
            &json!({ "scheme_code": SCHEME, "closes": "2026-12-31", "reason": "迟交" }),
        )
        .await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (422, Some("closes_out_of_range")),
        "{err}"
    );
    let (status, list) = app.get("/api/v1/deductions", Some(&association)).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["items"], json!([]));
}

/// Before wj-2022's enrolment window opens (2021-10-11) nobody signs and no batch is made:
/// both answer `enrolment_not_open` with the day it opens, and nothing is kept.
async fn nothing_is_signed_or_deducted_before_the_window_opens(app: TestApp) {
    let worker = new_member(&app, 25, "冯海涛").await;
    let err = signing_refused(&app, &worker, "enrolment_not_open").await;
    assert_eq!(err["error"]["details"]["opens"], "2021-10-11");
    let err = batch_refused(&app, "2021-09", "enrolment_not_open").await;
    assert_eq!(err["error"]["details"]["opens"], "2021-10-11");
}

/// `person` signs and is refused with `code` (422); nothing is kept. The error is returned.
async fn signing_refused(app: &TestApp, person: &Person, code: &str) -> Value {
    let token = app.login(&person.pid).await;
    let text = current_text(app).await;
    let (status, err) = sign(app, &token, Signing::valid(&text, &person.card)).await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (422, Some(code)),
        "{err}"
    );
    assert_eq!(count(app, "payment_authorisation").await, 0);
    assert!(stored_objects(app).await.is_empty());
    err
}

/// The officer asks for `month`'s wj-2022 batch and is refused with `code` (422); no batch,
/// so no bank file, exists. The error is returned.
async fn batch_refused(app: &TestApp, month: &str, code: &str) -> Value {
    let association = app.login("association").await;
    let (status, err) = app
        .post(
            "/api/v1/deductions",
            Some(&association),
            &json!({ "scheme_code": SCHEME, "month": month }),
        )
        .await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (422, Some(code)),
        "{err}"
    );
    assert_eq!(count(app, "deduction_batch").await, 0);
    err
}

/// The bank's result of November's batch comes back only after 2022 — the period it paid for
/// — has ended: nobody is enrolled into a year that is over; each success becomes a refund due
/// (`period_ended`) the officer lists and the worker sees. The same file imported while the
/// period runs enrols (the walk below).
async fn a_result_imported_after_the_period_ended_enrols_nobody_and_is_refunded(app: TestApp) {
    let worker = new_member(&app, 26, "褚志强").await;
    signed(&app, &worker).await;
    let nov = batch_on(&app, "2021-11", "2021-11-20").await.unwrap();
    let summary = import(&app, &nov, &[("褚志强", "成功")], on(ym("2023-01"), 5)).await;
    assert_eq!((summary.succeeded, summary.refunds.len()), (1, 1));
    assert!(summary.already_enrolled.is_empty());
    assert!(periods_of(&app, &worker.pid).await.is_empty());
    let association = app.login("association").await;
    let (status, refunds) = app
        .get("/api/v1/deduction-refunds?status=due", Some(&association))
        .await;
    assert_eq!(status, 200, "{refunds}");
    assert_eq!(refunds["items"][0]["reason"], "period_ended");
    assert_eq!(refunds["items"][0]["member_name"], "褚志强");
    let token = app.login(&worker.pid).await;
    let (_, mine) = app.get("/api/v1/me/deductions", Some(&token)).await;
    assert_eq!(mine["refunds"][0]["reason"], "period_ended");
    assert_eq!(mine["deductions"][0]["status"], "succeeded");
    assert!(
        outbox_of(&app, &worker.pid)
            .await
            .iter()
            .all(|m| m.occasion != "enrolment_confirmed"),
        "nobody is told they are enrolled"
    );
}

async fn import(
    app: &TestApp,
    batch: &deduction::DeductionBatch,
    results: &[(&str, &str)],
    on_day: DateTime<Utc>,
) -> deduction::ImportSummary {
    let lines = deduction::file_lines(&app.state.db, &app.state.pii, batch)
        .await
        .unwrap();
    let mut csv = String::from("流水号,结果,失败原因\n");
    for l in &lines {
        let (_, outcome) = results
            .iter()
            .find(|(name, _)| *name == l.name.as_str())
            .unwrap_or_else(|| panic!("{} has no result", l.name.as_str()));
        if *outcome == "成功" {
            csv.push_str(&format!("{},成功,\n", l.serial));
        } else {
            csv.push_str(&format!("{},失败,{outcome}\n", l.serial));
        }
    }
    csv.push_str(&format!("合计,{}\n", lines.len()));
    let txn = app.state.db.begin().await.unwrap();
    let today = authorisation::local_date(on_day);
    let (_, summary) = deduction::import_result(&txn, &batch.pid, csv.as_bytes(), on_day, today)
        .await
        .unwrap();
    txn.commit().await.unwrap();
    summary
}

async fn batch_on(
    app: &TestApp,
    month: &str,
    today: &str,
) -> Result<deduction::DeductionBatch, deduction::BatchError> {
    let today = d(today);
    let txn = app.state.db.begin().await.unwrap();
    let at = on(YearMonth::from(today), today.day());
    let made = deduction::create_batch(&txn, SCHEME, ym(month), "officer", at, today).await;
    txn.commit().await.unwrap();
    made
}

async fn periods_of(app: &TestApp, pid: &str) -> Vec<(NaiveDate, NaiveDate)> {
    let m = member_row(app, pid).await;
    entity::membership::Entity::find()
        .filter(entity::membership::Column::MemberId.eq(m.id))
        .filter(entity::membership::Column::SchemeCode.eq(SCHEME))
        .all(&app.state.db)
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.coverage_start, m.coverage_end))
        .collect()
}

/// A whole Wujin year on pinned dates: the text is published, workers sign, the first batch is
/// made inside the window (not before it opens), the bank's result enrols or fails, a
/// revocation keeps a worker out of December, the window closes, the association opens a late
/// window (recorded), December's result is imported across the new year and still enrols into
/// 2022, a late payer already enrolled by other means is refunded (record, bank file, marked),
/// and the officer's and the worker's views show it all.
async fn a_wujin_year_from_the_text_to_the_refund(app: TestApp) {
    let year = (d("2022-01-01"), d("2022-12-31"));
    current_text(&app).await;
    let zhou = new_member(&app, 31, "周晓东").await;
    let wu = new_member(&app, 32, "吴丽娜").await;
    let zheng = new_member(&app, 33, "郑文博").await;
    signed(&app, &zhou).await;
    signed(&app, &wu).await;
    let zheng_auth = signed(&app, &zheng).await;

    // Before the window opens there is no batch.
    assert!(matches!(
        batch_on(&app, "2021-10", "2021-10-08").await,
        Err(deduction::BatchError::WindowNotOpen { opens }) if opens == d("2021-10-11")
    ));

    // November, through the officer's API on the pinned day (2021-11-15).
    let association = app.login("association").await;
    let (status, nov) = app
        .post(
            "/api/v1/deductions",
            Some(&association),
            &json!({ "scheme_code": SCHEME, "month": "2021-11" }),
        )
        .await;
    assert_eq!(status, 201, "{nov}");
    assert_eq!(nov["item_count"], 3);
    assert_eq!(
        (nov["coverage_start"].as_str(), nov["coverage_end"].as_str()),
        (Some("2022-01-01"), Some("2022-12-31"))
    );
    // A month before the window's month is not this period's deduction.
    let (status, err) = app
        .post(
            "/api/v1/deductions",
            Some(&association),
            &json!({ "scheme_code": SCHEME, "month": "2021-09" }),
        )
        .await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (422, Some("month_outside_window")),
        "{err}"
    );
    assert_eq!(err["error"]["details"]["opens"], "2021-10-11");
    // The bank's file as a workbook too.
    let (status, content_type, bytes) = app
        .download(
            &format!(
                "/api/v1/deductions/{}/file.xlsx",
                nov["id"].as_str().unwrap()
            ),
            &association,
        )
        .await;
    assert_eq!(status, 200);
    assert!(content_type.contains("spreadsheetml"), "{content_type}");
    assert!(bytes.starts_with(b"PK"), "an xlsx is a zip");
    let nov = deduction::get(&app.state.db, nov["id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    let summary = import(
        &app,
        &nov,
        &[
            ("周晓东", "成功"),
            ("吴丽娜", "账户余额不足"),
            ("郑文博", "成功"),
        ],
        on(ym("2021-11"), 25),
    )
    .await;
    assert_eq!((summary.succeeded, summary.failed), (2, 1));
    assert_eq!(periods_of(&app, &zhou.pid).await, [year]);
    assert!(periods_of(&app, &wu.pid).await.is_empty());

    // 郑 revokes on the pinned day: effective until 30 November.
    let zheng_token = app.login(&zheng.pid).await;
    let (status, revoked) = app
        .post(
            &format!(
                "/api/v1/me/authorisations/{}/revoke",
                zheng_auth["id"].as_str().unwrap()
            ),
            Some(&zheng_token),
            &json!({}),
        )
        .await;
    assert_eq!(status, 200, "{revoked}");
    assert_eq!(revoked["effective_until"], "2021-11-30");

    // December: 吴 only (周 and 郑 are enrolled; 郑 also revoked). Made on 20 December.
    let dec = batch_on(&app, "2021-12", "2021-12-20").await.unwrap();
    assert_eq!(dec.item_count, 1);
    assert_eq!(dec.period, Some(year));
    // A late payer signs after December's batch was made.
    let sun = new_member(&app, 34, "孙慧敏").await;
    let feng = new_member(&app, 35, "冯春花").await;
    signed(&app, &sun).await;
    signed(&app, &feng).await;

    // The window closes on 25 December: a batch on the 26th is refused.
    assert!(matches!(
        batch_on(&app, "2021-12", "2021-12-26").await,
        Err(deduction::BatchError::WindowClosed { closes, period_start, .. })
            if closes == d("2021-12-25") && period_start == year.0
    ));
    // The association opens a late window until 15 January, recorded with its reason.
    let late = deduction::open_late_window(
        &app.state.db,
        SCHEME,
        d("2022-01-15"),
        "部分职工12月银行卡余额不足，补扣一次",
        "officer",
        on(ym("2021-12"), 27),
        d("2021-12-27"),
        None,
    )
    .await
    .unwrap();
    assert_eq!(late, year);
    let window = entity::deduction_window::Entity::find()
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (window.closes, window.reason.as_str()),
        (d("2022-01-15"), "部分职工12月银行卡余额不足，补扣一次")
    );

    // December's result comes back on 5 January 2022: 吴 is enrolled into 2022 all the same.
    let summary = import(&app, &dec, &[("吴丽娜", "成功")], on(ym("2022-01"), 5)).await;
    assert_eq!(summary.succeeded, 1);
    assert_eq!(periods_of(&app, &wu.pid).await, [year]);

    // January's late batch (10 January): 孙 and 冯. Before its result, 冯's union enrols her
    // for 2022 by other means; her deduction then becomes a refund.
    let jan = batch_on(&app, "2022-01", "2022-01-10").await.unwrap();
    assert_eq!(jan.item_count, 2);
    first_period_of(&app, &feng.pid, SCHEME, 2022).await;
    let summary = import(
        &app,
        &jan,
        &[("孙慧敏", "成功"), ("冯春花", "成功")],
        on(ym("2022-01"), 20),
    )
    .await;
    assert_eq!(summary.succeeded, 2);
    assert_eq!(summary.refunds.len(), 1);
    assert_eq!(periods_of(&app, &sun.pid).await, [year]);
    assert_eq!(
        periods_of(&app, &feng.pid).await.len(),
        1,
        "no second period for 冯"
    );

    // After the late window: refused.
    assert!(matches!(
        batch_on(&app, "2022-02", "2022-02-03").await,
        Err(deduction::BatchError::WindowClosed { closes, .. }) if closes == d("2022-01-15")
    ));

    // The officer's desk: batches with totals, lines, failures per union, refunds.
    let (status, list) = app.get("/api/v1/deductions", Some(&association)).await;
    assert_eq!(status, 200, "{list}");
    let months: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["month"].as_str().unwrap())
        .collect();
    assert_eq!(months, ["2022-01", "2021-12", "2021-11"]);
    assert_eq!(list["totals"]["items"], 6);
    assert_eq!(list["totals"]["amount"], "180.00");
    assert_eq!(list["totals"]["succeeded"], 5);
    assert_eq!(list["totals"]["failed"], 1);
    assert_eq!(list["totals"]["failed_amount"], "30.00");
    assert_eq!(list["next_cursor"], Value::Null);
    // A page at a time; the totals are always those of every batch the filter matches.
    let (_, first) = app
        .get("/api/v1/deductions?limit=2", Some(&association))
        .await;
    assert_eq!(first["items"].as_array().unwrap().len(), 2);
    assert_eq!(first["totals"]["batches"], 3);
    assert_eq!(first["totals"]["items"], 6);
    let cursor = first["next_cursor"].as_str().unwrap();
    let (_, second) = app
        .get(
            &format!("/api/v1/deductions?limit=2&cursor={cursor}"),
            Some(&association),
        )
        .await;
    assert_eq!(second["items"][0]["month"], "2021-11");
    assert_eq!(second["items"].as_array().unwrap().len(), 1);
    assert_eq!(second["next_cursor"], Value::Null);
    assert_eq!(
        app.get("/api/v1/deductions?limit=0", Some(&association))
            .await
            .0,
        422
    );
    let (_, only_nov) = app
        .get(
            "/api/v1/deductions?month_from=2021-11&month_to=2021-11",
            Some(&association),
        )
        .await;
    assert_eq!(only_nov["items"].as_array().unwrap().len(), 1);
    assert_eq!(only_nov["items"][0]["failed"], 1);
    let (status, err) = app
        .get("/api/v1/deductions?status=lost", Some(&association))
        .await;
    assert_eq!(status, 422, "{err}");
    let clerk = app.login("union-education").await;
    assert_eq!(app.get("/api/v1/deductions", Some(&clerk)).await.0, 403);

    let (status, lines) = app
        .get(
            &format!("/api/v1/deductions/{}/lines", nov.pid),
            Some(&association),
        )
        .await;
    assert_eq!(status, 200, "{lines}");
    assert_eq!(lines["next_cursor"], Value::Null);
    let (_, one) = app
        .get(
            &format!("/api/v1/deductions/{}/lines?limit=1", nov.pid),
            Some(&association),
        )
        .await;
    assert_eq!(one["items"][0]["seq"], 1);
    let cursor = one["next_cursor"].as_str().unwrap();
    let (_, next) = app
        .get(
            &format!(
                "/api/v1/deductions/{}/lines?limit=1&cursor={cursor}",
                nov.pid
            ),
            Some(&association),
        )
        .await;
    assert_eq!(next["items"][0]["seq"], 2, "{next}");
    let wu_line = lines["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["member_name"] == "吴丽娜")
        .unwrap();
    assert_eq!(
        (
            wu_line["status"].as_str(),
            wu_line["failure_reason"].as_str()
        ),
        (Some("failed"), Some("账户余额不足"))
    );
    assert_eq!(wu_line["union_name"], UNIT);
    let (status, failed) = app
        .get(
            &format!("/api/v1/deductions/failed?scheme_code={SCHEME}"),
            Some(&association),
        )
        .await;
    assert_eq!(status, 200, "{failed}");
    assert_eq!(failed["unions"][0]["union_name"], UNIT);
    assert_eq!(failed["unions"][0]["count"], 1);
    assert_eq!(failed["unions"][0]["amount"], "30.00");
    assert_eq!(failed["items"][0]["member_name"], "吴丽娜");
    assert_eq!(failed["items"][0]["failure_reason"], "账户余额不足");
    let union = failed["unions"][0]["union_id"].as_str().unwrap();
    let (_, of_union) = app
        .get(
            &format!("/api/v1/deductions/failed?union_id={union}"),
            Some(&association),
        )
        .await;
    assert_eq!(of_union["items"].as_array().unwrap().len(), 1);
    let other = app
        .unit_id(&association, "内蒙古电力（集团）有限责任公司工会")
        .await;
    let (_, of_other) = app
        .get(
            &format!("/api/v1/deductions/failed?union_id={other}"),
            Some(&association),
        )
        .await;
    assert_eq!(
        of_other,
        json!({ "unions": [], "items": [], "next_cursor": null })
    );

    let (status, refunds) = app
        .get("/api/v1/deduction-refunds?status=due", Some(&association))
        .await;
    assert_eq!(status, 200, "{refunds}");
    assert_eq!(refunds["items"].as_array().unwrap().len(), 1);
    let refund = &refunds["items"][0];
    assert_eq!(
        (
            refund["member_name"].as_str(),
            refund["amount"].as_str(),
            refund["reason"].as_str(),
            refund["status"].as_str()
        ),
        (
            Some("冯春花"),
            Some("30.00"),
            Some("already_enrolled"),
            Some("due")
        )
    );
    assert_eq!(refund["month"], "2022-01");
    let (status, content_type, bytes) = app
        .download("/api/v1/deduction-refunds/file", &association)
        .await;
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/csv"));
    let text = String::from_utf8(bytes[3..].to_vec()).unwrap();
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!(rows[0], "序号,退款编号,姓名,身份证号,银行卡号,金额,原因");
    assert_eq!(
        rows[1],
        format!(
            "1,{},冯春花,{},{},30.00,already_enrolled",
            refund["id"].as_str().unwrap(),
            feng.id_number,
            feng.card
        )
    );
    assert_eq!(rows[2], "合计,1,30.00");
    // The same file as a workbook, numbers kept as text.
    let (status, content_type, bytes) = app
        .download("/api/v1/deduction-refunds/file.xlsx", &association)
        .await;
    assert_eq!(status, 200);
    assert!(content_type.contains("spreadsheetml"), "{content_type}");
    let cells = workbook_rows(bytes);
    assert_eq!(cells[0][1], "退款编号");
    assert_eq!(
        cells[1][1..5],
        [
            refund["id"].as_str().unwrap().to_owned(),
            "冯春花".to_owned(),
            feng.id_number.clone(),
            feng.card.clone()
        ]
    );
    assert_eq!(cells[1][5], "30");
    let downloads = app
        .count("SELECT COUNT(*) AS n FROM audit_event WHERE action = 'deduction.refund_file_downloaded'")
        .await;
    assert_eq!(downloads, 2);
    let path = format!(
        "/api/v1/deduction-refunds/{}/refunded",
        refund["id"].as_str().unwrap()
    );
    let (status, marked) = app.post(&path, Some(&association), &json!({})).await;
    assert_eq!(status, 200, "{marked}");
    assert_eq!(marked["status"], "refunded");
    let (status, err) = app.post(&path, Some(&association), &json!({})).await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (409, Some("already_refunded"))
    );
    let (_, due) = app
        .get("/api/v1/deduction-refunds?status=due", Some(&association))
        .await;
    assert_eq!(due["items"], json!([]));

    // Each list keeps to the caller's part of the tree: seen from another union's subtree
    // there is no batch, failure, refund or authorisation of these workers.
    let power = entity::organisation::Entity::find()
        .filter(entity::organisation::Column::Name.eq("内蒙古电力（集团）有限责任公司工会"))
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    let elsewhere = huzhu::service::scope::Scope::Subtree { path: power.path };
    let db = &app.state.db;
    let batches = deduction::list_batches(db, &elsewhere, &Default::default(), None, 20)
        .await
        .unwrap();
    assert!(batches.page.items.is_empty());
    assert_eq!(batches.totals.items, 0);
    let fails = deduction::failed_lines(db, &elsewhere, &Default::default(), None, 20)
        .await
        .unwrap();
    assert!(fails.unions.is_empty() && fails.page.items.is_empty());
    let refunds_elsewhere = deduction::list_refunds(db, &elsewhere, None, None, 20)
        .await
        .unwrap();
    assert!(refunds_elsewhere.items.is_empty());
    let signed_elsewhere =
        authorisation::list_for_staff(db, &app.state.pii, &elsewhere, None, None, None, 20)
            .await
            .unwrap();
    assert!(signed_elsewhere.items.is_empty());
    assert!(
        deduction::get_within(db, &elsewhere, &nov.pid)
            .await
            .unwrap()
            .is_none()
    );

    // The workers' views.
    let wu_token = app.login(&wu.pid).await;
    let (status, mine) = app.get("/api/v1/me/deductions", Some(&wu_token)).await;
    assert_eq!(status, 200, "{mine}");
    let months: Vec<(&str, &str)> = mine["deductions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["month"].as_str().unwrap(), l["status"].as_str().unwrap()))
        .collect();
    assert_eq!(months, [("2021-12", "succeeded"), ("2021-11", "failed")]);
    assert_eq!(mine["deductions"][1]["failure_reason"], "账户余额不足");
    assert_eq!(mine["deductions"][0]["amount"], "30.00");
    assert_eq!(mine["deductions"][0]["coverage_start"], "2022-01-01");
    assert_eq!(mine["refunds"], json!([]));
    let feng_token = app.login(&feng.pid).await;
    let (_, hers) = app.get("/api/v1/me/deductions", Some(&feng_token)).await;
    assert_eq!(hers["refunds"][0]["status"], "refunded");
    assert_eq!(hers["deductions"][0]["status"], "succeeded");
    assert_eq!(
        app.get("/api/v1/me/deductions", Some(&association)).await.0,
        403
    );

    // The exact text 周 signed, even after the association publishes a new version.
    let zhou_token = app.login(&zhou.pid).await;
    let (_, zhou_auths) = app
        .get("/api/v1/me/authorisations", Some(&zhou_token))
        .await;
    let zhou_auth = zhou_auths[0]["id"].as_str().unwrap().to_owned();
    let (_, v1) = app
        .get(&format!("/api/v1/authorisation-texts/{SCHEME}"), None)
        .await;
    authorisation::publish_text(
        &app.state.db,
        SCHEME,
        "武进区职工医疗互助付款授权书（2023 年修订）",
        Utc::now(),
    )
    .await
    .unwrap();
    let text_path = format!("/api/v1/me/authorisations/{zhou_auth}/text");
    let (status, theirs) = app.get(&text_path, Some(&zhou_token)).await;
    assert_eq!(status, 200, "{theirs}");
    assert_eq!(theirs["version"], 1);
    assert_eq!(theirs["sha256"], zhou_auths[0]["text_sha256"]);
    assert_eq!(theirs["body"], v1["body"]);
    assert_eq!(
        hex::encode(Sha256::digest(theirs["body"].as_str().unwrap().as_bytes())),
        theirs["sha256"].as_str().unwrap()
    );
    let (_, now_current) = app
        .get(&format!("/api/v1/authorisation-texts/{SCHEME}"), None)
        .await;
    assert_eq!(now_current["version"], 2);
    // Another worker's authorisation is not theirs to read; staff use the officer's desk.
    assert_eq!(app.get(&text_path, Some(&wu_token)).await.0, 404);
    assert_eq!(app.get(&text_path, Some(&association)).await.0, 403);
}

/// The cells of a workbook's first sheet, as text.
fn workbook_rows(bytes: Vec<u8>) -> Vec<Vec<String>> {
    use calamine::{Reader, Xlsx};
    let mut book: Xlsx<_> = Xlsx::new(Cursor::new(bytes)).unwrap();
    let sheet = book.sheet_names()[0].clone();
    let range = book.worksheet_range(&sheet).unwrap();
    range
        .rows()
        .map(|r| r.iter().map(|c| c.to_string()).collect())
        .collect()
}

/// Finding 3 of issue 22 (the officer's side of signatures), reproduced: there was no staff
/// view of signed authorisations and no revocation on a worker's behalf
/// (`GET /api/v1/authorisations` was 404). Now the association lists and searches them with
/// who, when, where from and on what device, views the signature and ID photos byte for byte
/// (`no-store`, audited), and revokes for a worker with a written reason (audited as on
/// behalf; the worker told through the outbox). Unions see none of it.
async fn the_association_sees_the_evidence_and_revokes_on_a_workers_behalf(app: TestApp) {
    let worker = new_member(&app, 41, "郑海燕").await;
    let auth = signed(&app, &worker).await;
    let auth_id = auth["id"].as_str().unwrap();
    let association = app.login("association").await;
    let clerk = app.login("union-education").await;
    assert_eq!(app.get("/api/v1/authorisations", Some(&clerk)).await.0, 403);

    let (status, found) = app
        .get(
            "/api/v1/authorisations?scheme_code=wj-2022&name=海燕",
            Some(&association),
        )
        .await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["items"].as_array().unwrap().len(), 1);
    let row = &found["items"][0];
    assert_eq!(
        (
            row["id"].as_str(),
            row["member_name"].as_str(),
            row["union_name"].as_str()
        ),
        (Some(auth_id), Some("郑海燕"), Some(UNIT))
    );
    assert_eq!(row["user_agent"], PHONE_UA);
    assert_eq!(row["text_version"], 1);
    let (_, none) = app
        .get("/api/v1/authorisations?name=没有这个人", Some(&association))
        .await;
    assert_eq!(none["items"], json!([]));

    let signature_path = row["evidence"][0].as_str().unwrap().to_owned();
    let res = app
        .client
        .get(app.url(&signature_path))
        .bearer_auth(&association)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert_eq!(res.headers()["content-type"], "image/png");
    let bytes = res.bytes().await.unwrap();
    assert_eq!(
        hex::encode(Sha256::digest(&bytes)),
        auth["signature_sha256"].as_str().unwrap()
    );
    let res = app
        .client
        .get(app.url(&signature_path))
        .bearer_auth(&clerk)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 403);
    let viewed = app
        .count(
            "SELECT COUNT(*) AS n FROM audit_event WHERE action = 'authorisation.evidence_viewed'",
        )
        .await;
    assert_eq!(viewed, 1);

    let path = format!("/api/v1/authorisations/{auth_id}/revoke");
    let (status, err) = app
        .post(&path, Some(&association), &json!({ "reason": "  " }))
        .await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (422, Some("reason_required"))
    );
    let (status, revoked) = app
        .post(
            &path,
            Some(&association),
            &json!({ "reason": "职工来电要求撤销（换卡）" }),
        )
        .await;
    assert_eq!(status, 200, "{revoked}");
    assert_eq!(revoked["status"], "revoked");
    assert_eq!(revoked["effective_until"], "2021-11-30");
    let (status, err) = app
        .post(&path, Some(&association), &json!({ "reason": "再次" }))
        .await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (409, Some("already_revoked"))
    );
    let told = outbox_of(&app, &worker.pid).await;
    assert_eq!(told.len(), 1);
    assert_eq!(told[0].occasion, "authorisation_revoked");
    let payload: Value = serde_json::from_str(&told[0].payload).unwrap();
    assert_eq!(payload["effective_from"], "2021-12-01");
    let on_behalf = app.count("SELECT COUNT(*) AS n FROM audit_event WHERE action = 'authorisation.revoked' AND details LIKE '%on_behalf_of%'").await;
    assert_eq!(on_behalf, 1);
}

on_both_backends_with!(
    in_the_window, rehearsal =>
    two_signatures_at_once_leave_one_record_and_no_stray_files,
    the_authorisation_text_is_published_with_its_hash,
    a_signature_is_refused_until_every_part_is_right_and_then_kept_unaltered,
    the_association_deducts_and_each_result_enrols_or_tells_why,
    a_revocation_stops_deductions_from_the_next_month,
    a_member_whose_union_does_not_take_part_cannot_sign_and_is_never_deducted,
    a_wujin_year_from_the_text_to_the_refund,
    the_association_sees_the_evidence_and_revokes_on_a_workers_behalf,
    a_result_imported_after_the_period_ended_enrols_nobody_and_is_refunded,
);

on_both_backends_with!(
    before_the_window, before_it_opens =>
    nothing_is_signed_or_deducted_before_the_window_opens,
);

on_both_backends_with!(
    years_after_the_window, years_later =>
    a_deduction_for_a_closed_period_is_refused_before_any_bank_file_exists,
);
