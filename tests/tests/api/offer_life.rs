//! The offer's life for the member (免申即享): reminded 7 days before the scheme's claim
//! deadline, lapsed by the scan after it and then no longer confirmable; confirmed by the union
//! for the beneficiary of a member who died in hospital — on both databases.

use chrono::{Duration, NaiveDate, Utc};
use huzhu::service::reminders::schedule::{self, ScanReport};
use huzhu_tests::claim_flow::{detail, period};
use huzhu_tests::harness::TestApp;
use huzhu_tests::{on_both_backends_with, roster};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;

use super::offers::{id_number_of, import, in_2025, stays};

on_both_backends_with!(lapse2025, in_2025 =>
    an_unconfirmed_offer_is_reminded_seven_days_before_its_deadline_once_then_lapses,
    an_offer_of_a_member_who_died_in_hospital_is_confirmed_by_the_union_for_the_beneficiary,
);

/// Scans `day` as the leader (there is no other).
async fn scan(app: &TestApp, day: NaiveDate) -> ScanReport {
    schedule::run_once_as_leader(&app.state.db, day, Utc::now())
        .await
        .expect("scan")
        .expect("no other replica scans")
}

/// The public id of the only offer standing.
async fn the_offer(app: &TestApp) -> String {
    let backend = app.state.db.get_database_backend();
    let row = app
        .state
        .db
        .query_one_raw(Statement::from_string(
            backend,
            "SELECT pid FROM claim WHERE filed_by_kind = 'insurance_file'".to_owned(),
        ))
        .await
        .expect("query")
        .expect("an offer");
    row.try_get("", "pid").expect("pid")
}

async fn lapsing_reminders(app: &TestApp) -> i64 {
    app.count("SELECT COUNT(*) AS n FROM outbox WHERE occasion = 'offer_lapsing'")
        .await
}

async fn an_unconfirmed_offer_is_reminded_seven_days_before_its_deadline_once_then_lapses(
    app: TestApp,
) {
    let p = period(&app, "union-power", "nm-inpatient-2025", 0).await;
    let id = id_number_of(&app, &p).await;
    let association = app.login("association").await;
    let file = stays(&[(
        &id,
        "JS-700",
        "2025-05-01",
        "2025-05-09",
        "8000.00",
        "800.00",
    )]);
    let job = import(&app, &association, file, "结算.csv").await;
    assert_eq!(job["summary"]["offered"], 1, "{job}");
    let claim = the_offer(&app).await;
    let member = app.login(&p.member_pid).await;
    let shown = detail(&app, &member, &claim).await;
    // nm-inpatient: claims within 90 days after the coverage period ends.
    let end: NaiveDate = p.coverage_end.parse().expect("coverage end");
    let deadline = end + Duration::days(90);
    assert_eq!(shown["claim"]["lapses_on"], deadline.to_string(), "{shown}");
    let amount = shown["claim"]["payable"]
        .as_str()
        .expect("payable")
        .to_owned();

    // Eight days before: nothing. Seven days before: one reminder, with the amount and the
    // deadline. Scans after that (a retry the same day, the next days) queue no other.
    let report = scan(&app, deadline - Duration::days(8)).await;
    assert_eq!((report.offer_lapsing, report.offers_lapsed), (0, 0));
    assert_eq!(lapsing_reminders(&app).await, 0);
    let report = scan(&app, deadline - Duration::days(7)).await;
    assert_eq!(report.offer_lapsing, 1, "{report:?}");
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) AS n FROM outbox WHERE occasion = 'offer_lapsing' \
             AND dedupe_key = 'offer_lapsing:{claim}' \
             AND payload = '{{\"claim\":\"{claim}\",\"amount\":\"{amount}\",\"deadline\":\"{}\"}}'",
            deadline.format("%Y年%m月%d日")
        ))
        .await,
        1,
        "the reminder names the claim, the amount {amount} and the deadline"
    );
    assert_eq!(
        scan(&app, deadline - Duration::days(7)).await.offer_lapsing,
        0
    );
    let on_the_day = scan(&app, deadline).await;
    assert_eq!((on_the_day.offer_lapsing, on_the_day.offers_lapsed), (0, 0));
    assert_eq!(lapsing_reminders(&app).await, 1);
    assert_eq!(
        detail(&app, &member, &claim).await["claim"]["status"],
        "offered"
    );

    // The day after the deadline it lapses, once, with a step the member reads.
    let report = scan(&app, deadline + Duration::days(1)).await;
    assert_eq!((report.offer_lapsing, report.offers_lapsed), (0, 1));
    assert_eq!(
        scan(&app, deadline + Duration::days(2)).await.offers_lapsed,
        0
    );
    let lapsed = detail(&app, &member, &claim).await;
    assert_eq!(lapsed["claim"]["status"], "lapsed", "{lapsed}");
    assert_eq!(lapsed["claim"]["version"], 2);
    let last = lapsed["timeline"]
        .as_array()
        .expect("timeline")
        .last()
        .expect("a step")
        .clone();
    assert_eq!(last["action"], "lapsed", "{lapsed}");
    assert_eq!(last["status"], "lapsed");
    assert!(
        last["note"]
            .as_str()
            .unwrap_or_default()
            .contains(&deadline.format("%Y年%m月%d日").to_string()),
        "{last}"
    );
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM audit_event WHERE action = 'claim.lapse'")
            .await,
        1
    );

    // It can no longer be confirmed: 409 `offer_lapsed` with the deadline, nothing changed.
    for version in [1, 2] {
        let (status, refused) = app
            .post(
                &format!("/api/v1/claims/{claim}/confirm-offer"),
                Some(&member),
                &json!({ "version": version, "bank_card": roster::bank_card(7) }),
            )
            .await;
        assert_eq!(status, 409, "{refused}");
        assert_eq!(refused["error"]["code"], "offer_lapsed");
        assert_eq!(
            refused["error"]["details"]["deadline"],
            deadline.to_string()
        );
    }
    assert_eq!(detail(&app, &member, &claim).await["claim"]["version"], 2);
    assert_eq!(lapsing_reminders(&app).await, 1);
}

async fn an_offer_of_a_member_who_died_in_hospital_is_confirmed_by_the_union_for_the_beneficiary(
    app: TestApp,
) {
    let p = period(&app, "union-power", "nm-inpatient-2025", 1).await;
    let id = id_number_of(&app, &p).await;
    let association = app.login("association").await;
    let file = format!(
        "证件号码,结算ID,入院日期,出院日期,住院天数,医疗费用总额,统筹基金支付,起付标准,政策范围内个人自付,医疗类别,离院方式\n\
         {id},JS-800,2025-06-01,2025-06-20,19,90000.00,60000.00,800.00,25000.00,住院,死亡\n"
    );
    let job = import(&app, &association, file.into_bytes(), "结算.csv").await;
    assert_eq!(job["summary"]["offered"], 1, "{job}");
    let claim = the_offer(&app).await;
    let path = format!("/api/v1/claims/{claim}/confirm-offer");
    let member = app.login(&p.member_pid).await;
    let union = app.login("union-power").await;
    let beneficiary = json!({ "name": "王芳", "id_number": roster::id_number("150102", NaiveDate::from_ymd_opt(1960, 8, 1).unwrap(), 8, false),
                              "relationship": "配偶", "bank_card": roster::bank_card(8080) });

    // Without a beneficiary: refused, whoever confirms.
    for token in [&member, &union] {
        let (status, refused) = app
            .post(
                &path,
                Some(token),
                &json!({ "version": 1, "bank_card": roster::bank_card(1) }),
            )
            .await;
        assert_eq!(status, 422, "{refused}");
        assert_eq!(refused["error"]["code"], "beneficiary_missing");
        assert_eq!(refused["error"]["details"]["field"], "beneficiary");
    }
    // The beneficiary is named by the union, not from the member's account; with their card only.
    let (status, refused) = app
        .post(
            &path,
            Some(&member),
            &json!({ "version": 1, "beneficiary": beneficiary }),
        )
        .await;
    assert_eq!(status, 403, "{refused}");
    let (status, refused) = app
        .post(
            &path,
            Some(&union),
            &json!({ "version": 1, "beneficiary": beneficiary, "bank_card": roster::bank_card(1) }),
        )
        .await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["error"]["code"], "invalid_request");
    let shown = detail(&app, &union, &claim).await;
    assert_eq!(shown["claim"]["status"], "offered");
    assert_eq!(shown["claim"]["version"], 1);

    let (status, confirmed) = app
        .post(
            &path,
            Some(&union),
            &json!({ "version": 1, "beneficiary": beneficiary }),
        )
        .await;
    assert_eq!(status, 200, "{confirmed}");
    assert_eq!(
        confirmed["claim"]["status"], "association_review",
        "{confirmed}"
    );
    assert_eq!(confirmed["claim"]["filed_by"], "insurance_file");
    assert_eq!(confirmed["claim"]["payee_name"], "王芳");
    assert_eq!(confirmed["claim"]["beneficiary"]["name"], "王芳");
    assert_eq!(confirmed["claim"]["beneficiary"]["relationship"], "配偶");
    let step = confirmed["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["action"] == "confirmed_on_behalf")
        .unwrap_or_else(|| panic!("no on-behalf step: {confirmed}"))
        .clone();
    assert!(step["note"].as_str().unwrap().contains("受益人"), "{step}");
    // Paid to the beneficiary's card, sealed; the member is not told of a card change.
    let row = huzhu_tests::claims::claim_row(
        &app,
        app.count(&format!("SELECT id AS n FROM claim WHERE pid = '{claim}'"))
            .await,
    )
    .await;
    let card = app
        .state
        .pii
        .open(
            huzhu::auth::crypto::PiiKind::BankCard,
            row.payee_bank_card_cipher.as_deref().expect("a card"),
        )
        .expect("opens");
    assert_eq!(card, roster::bank_card(8080));
    assert!(row.beneficiary_id_number_cipher.is_some());
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM outbox WHERE occasion = 'payee_changed'")
            .await,
        0
    );
}
