//! 免申即享 for the women's scheme (馨康): a settlement whose main diagnosis (ICD-10) is on the
//! scheme's disease list is offered as a diagnosis to a member enrolled in it, judged as the
//! simulation judges it — once per diagnosis, never over a claim already filed — on both
//! databases.

use huzhu_tests::claim_flow::{self, detail, period};
use huzhu_tests::harness::TestApp;
use huzhu_tests::on_both_backends_with;
use serde_json::{Value, json};

use crate::offers::{id_number_of, id_numbers_in, import, in_2025};

/// A settlement file of one stay per `(id number, settlement id, admitted, discharged, 主要诊断编码)`.
fn diagnosed(rows: &[(&str, &str, &str, &str, &str)]) -> Vec<u8> {
    let mut text = String::from(
        "证件号码,结算ID,入院日期,出院日期,住院天数,医疗费用总额,统筹基金支付,起付标准,政策范围内个人自付,医疗类别,主要诊断编码\n",
    );
    for (id, settlement, admitted, discharged, code) in rows {
        text.push_str(&format!(
            "{id},{settlement},{admitted},{discharged},10,30000.00,15000.00,800.00,12000.00,住院,{code}\n"
        ));
    }
    text.into_bytes()
}

/// The diagnosis row of settlement `id`: `(outcome, reason, claim pid)`.
async fn diagnosis_row(app: &TestApp, id: &str) -> (String, Option<String>, Option<String>) {
    use sea_orm::{ConnectionTrait, Statement};
    let db = &app.state.db;
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            format!(
                "SELECT s.outcome AS outcome, s.reason AS reason, c.pid AS claim FROM settlement s \
                 LEFT JOIN claim c ON c.id = s.claim_id \
                 WHERE s.settlement_id = '{id}' AND s.event_kind = 'diagnosis'"
            ),
        ))
        .await
        .expect("settlement")
        .unwrap_or_else(|| panic!("no diagnosis row for {id}"));
    (
        row.try_get("", "outcome").unwrap(),
        row.try_get("", "reason").unwrap(),
        row.try_get("", "claim").unwrap(),
    )
}

on_both_backends_with!(xinkang, in_2025 =>
    a_listed_diagnosis_is_offered_to_a_member_of_the_womens_scheme_once_and_as_simulated,
);

async fn a_listed_diagnosis_is_offered_to_a_member_of_the_womens_scheme_once_and_as_simulated(
    app: TestApp,
) {
    let women = id_numbers_in(&app, "nm-xinkang-2025").await;
    let man = id_numbers_in(&app, "nm-inpatient-2025")
        .await
        .into_iter()
        .find(|id| !women.contains(id))
        .expect("a member of the inpatient scheme only");
    let p = period(&app, "union-power", "nm-xinkang-2025", 0).await;
    let q = period(&app, "union-power", "nm-xinkang-2025", 1).await;
    let r = period(&app, "union-power", "nm-xinkang-2025", 2).await;
    let (pid, qid, rid) = (
        id_number_of(&app, &p).await,
        id_number_of(&app, &q).await,
        id_number_of(&app, &r).await,
    );
    // q applied for her diagnosis herself before the file came.
    let q_token = app.login(&q.member_pid).await;
    let filed = claim_flow::file(
        &app,
        &q_token,
        &q,
        json!({"kind": "diagnosis", "diagnosed_on": "2025-03-20",
               "disease": "ovarian_cancer_or_oophorectomy"}),
    )
    .await;
    let filed = filed["claim"]["id"].as_str().expect("filed").to_owned();

    let association = app.login("association").await;
    let file = diagnosed(&[
        // Row 2: breast cancer, after the observation period: offered.
        (&pid, "XK-1", "2025-03-01", "2025-03-11", "C50.901"),
        // Row 3: the same diagnosis settled again: the offer stands for it.
        (&pid, "XK-2", "2025-04-01", "2025-04-06", "c50.9"),
        // Row 4: the diagnosis q already applied for.
        (&qid, "XK-3", "2025-03-15", "2025-03-20", "C56.x00"),
        // Row 5: parametrium (C57.1), not the fallopian tube (C57.0): not on the list.
        (&rid, "XK-4", "2025-03-01", "2025-03-11", "C57.1"),
        // Row 6: a listed code, but not a member of the women's scheme.
        (&man, "XK-5", "2025-03-01", "2025-03-11", "C50.9"),
        // Row 7: another listed disease later in p's period: 馨康 pays once a period.
        (&pid, "XK-6", "2025-05-01", "2025-05-03", "D39.1"),
    ]);
    let job = import(&app, &association, file, "结算.csv").await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let s = &job["summary"];
    assert_eq!(s["matched"], 6, "{s}");
    assert_eq!(s["diagnoses_matched"], 4, "{s}");
    assert_eq!(s["diagnosis_not_covered"], 1, "{s}");
    assert_eq!(
        s["unmatched_rows"],
        json!([{"row": 6, "reason": "diagnosis_not_covered"}]),
        "{s}"
    );
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM settlement WHERE event_kind = 'diagnosis'")
            .await,
        4
    );
    assert_eq!(
        app.count(
            "SELECT COUNT(*) AS n FROM settlement WHERE event_kind = 'diagnosis' \
             AND settlement_id IN ('XK-4', 'XK-5')"
        )
        .await,
        0
    );

    // The offer: the diagnosis the simulation reads, diagnosed on the discharge date.
    let (outcome, _, offer) = diagnosis_row(&app, "XK-1").await;
    assert_eq!(outcome, "offered");
    let offer = offer.expect("the offer");
    let event = json!({"kind": "diagnosis", "diagnosed_on": "2025-03-11", "disease": "breast_cancer",
                       "in_situ": false});
    let sim = claim_flow::simulate(&app, "nm-xinkang-2025", &p, vec![event]).await;
    let result = &sim["results"][0];
    assert_eq!(result["payable"], "32000.00", "{sim}");
    let member = app.login(&p.member_pid).await;
    let shown = detail(&app, &member, &offer).await;
    assert_eq!(shown["claim"]["status"], "offered", "{shown}");
    assert_eq!(shown["claim"]["filed_by"], "insurance_file");
    assert_eq!(shown["claim"]["kind"], "diagnosis", "{shown}");
    assert_eq!(shown["claim"]["payable"], result["payable"], "{shown}");
    assert_eq!(shown["claim"]["judgement"]["items"], result["items"]);

    // No double payment: the same diagnosis again, a diagnosis already applied for, another
    // disease in a period whose benefit the offer has taken.
    assert_eq!(
        diagnosis_row(&app, "XK-2").await,
        ("corroborates".to_owned(), None, Some(offer.clone()))
    );
    assert_eq!(
        diagnosis_row(&app, "XK-3").await,
        ("corroborates".to_owned(), None, Some(filed))
    );
    assert_eq!(
        diagnosis_row(&app, "XK-6").await,
        (
            "not_offered".to_owned(),
            Some("benefit_terminated".to_owned()),
            None
        )
    );
    assert_eq!(
        app.count(
            "SELECT COUNT(*) AS n FROM claim WHERE kind = 'diagnosis' AND filed_by_kind = 'insurance_file'"
        )
        .await,
        1
    );
    // Applying for the offered diagnosis is refused with a pointer to the offer.
    let (status, refused) = app
        .post(
            "/api/v1/claims",
            Some(&member),
            &json!({ "membership_id": p.membership_pid, "event": {"kind": "diagnosis",
                     "diagnosed_on": "2025-03-12", "disease": "breast_cancer"} }),
        )
        .await;
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["error"]["code"], "stay_already_offered");
    assert_eq!(refused["error"]["details"]["offer"], offer.as_str());

    // Importing the file again changes nothing.
    let file = diagnosed(&[(&pid, "XK-1", "2025-03-01", "2025-03-11", "C50.901")]);
    let again: Value = import(&app, &association, file, "结算.csv").await;
    assert_eq!(again["summary"]["already_imported"], 1, "{again}");
    assert_eq!(again["summary"]["offered"], 0, "{again}");
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM settlement WHERE event_kind = 'diagnosis'")
            .await,
        4
    );
}
