//! The data of the benchmark harness (`bench/run`, issue 20): a PostgreSQL database the
//! release `huzhu serve` then serves, left in place for the harness (which drops it).
//!
//! `cargo run --release -p huzhu-tests --example bench_data -- UNIONS MEMBERS_PER_UNION CLAIMS_PER_MEMBER`
//! (defaults 500 × 40 × 5: 20,000 members, 100,000 claims across 500 unions).
//!
//! The demo is seeded by the application itself; then real claims are walked through the API
//! into every status a reviewer meets (draft, each review stage, returned, approved, paid,
//! rejected, withdrawn), and those rows are cloned in bulk, in SQL, onto new unions, members and
//! memberships — the same columns the application wrote, so every list and count reads what
//! it would read in production. Prints one JSON line for the harness: the database URL, the
//! data directory (the demo's keys), and the accounts and claims to measure with.

use huzhu_tests::claim_flow::{act, approve_through, file, pay, period, upload_required_small};
use huzhu_tests::harness::{Backend, spawn_app_with};
use huzhu_tests::pictures::twelve_megapixel_jpeg;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};

const STAY: fn(u32) -> Value = |day| {
    json!({"kind": "inpatient", "admitted_on": format!("2025-03-{day:02}"),
           "discharged_on": format!("2025-03-{:02}", day + 5), "billed_days": 5,
           "eligible_self_pay": "12000.00", "deductible": "800.00"})
};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let arg = |i: usize, default: i64| -> i64 {
        std::env::args()
            .nth(i)
            .and_then(|a| a.parse().ok())
            .unwrap_or(default)
    };
    let (unions, per_union, per_member) = (arg(1, 500), arg(2, 40), arg(3, 5));
    let mut app = spawn_app_with(Backend::Postgres, |s| {
        s.clock.today = chrono::NaiveDate::from_ymd_opt(2025, 9, 15);
    })
    .await
    .expect("bench_data needs HUZHU_TEST_POSTGRES_URL and HUZHU_TEST_REDIS_URL");

    // Real claims in every status, through the API (as member, union, service point, association).
    let union = app.login("union-power").await;
    let sp = app.login("sp-xincheng").await;
    let association = app.login("association").await;
    let reviewers = vec![
        ("union_review", union.clone()),
        ("service_point_review", sp.clone()),
        ("appraisal", association.clone()),
        ("association_review", association.clone()),
    ];
    let p = period(&app, "union-power", "nm-inpatient-2025", 0).await;
    let member = app.login(&p.member_pid).await;
    let mut templates = Vec::new();
    let mut draft_for_photos = String::new();
    for (i, target) in [
        "draft",
        "union_review",
        "service_point_review",
        "association_review",
        "returned",
        "approved",
        "paid",
        "rejected",
        "withdrawn",
    ]
    .into_iter()
    .enumerate()
    {
        let d = file(&app, &member, &p, STAY(1 + 2 * i as u32)).await;
        let claim = d["claim"]["id"].as_str().expect("claim").to_owned();
        if target == "draft" {
            draft_for_photos = claim.clone();
            templates.push(claim);
            continue;
        }
        upload_required_small(&app, &member, &d, 100 + i as u64).await;
        let ok = |(s, b): (u16, Value)| assert_eq!(s, 200, "{target}: {b}");
        ok(act(&app, &member, &claim, "submit", json!({})).await);
        match target {
            "union_review" => {}
            "service_point_review" => ok(act(&app, &union, &claim, "approve", json!({})).await),
            "association_review" => {
                ok(act(&app, &union, &claim, "approve", json!({})).await);
                ok(act(&app, &sp, &claim, "approve", json!({})).await);
            }
            "returned" => ok(act(
                &app,
                &union,
                &claim,
                "return",
                json!({"message": "发票不清晰", "materials": [{"category": "invoice", "note": "请重拍发票"}]}),
            )
            .await),
            "approved" => {
                approve_through(&app, &claim, &reviewers).await;
            }
            "paid" => {
                approve_through(&app, &claim, &reviewers).await;
                pay(&app, &claim).await;
            }
            "rejected" => ok(act(&app, &union, &claim, "reject", json!({"reason": "other", "note": "重复申请"})).await),
            "withdrawn" => ok(act(&app, &member, &claim, "withdraw", json!({})).await),
            _ => unreachable!(),
        }
        templates.push(claim);
    }

    // Bulk: unions beside union-power, members cloned from the demo member, one membership
    // each, and claims cloned from the templates in turn.
    let db = &app.state.db;
    let run = |sql: String| async move {
        db.execute_raw(Statement::from_string(db.get_database_backend(), sql))
            .await
            .unwrap_or_else(|e| panic!("bulk load: {e}"));
    };
    let template_list = templates
        .iter()
        .map(|t| format!("'{t}'"))
        .collect::<Vec<_>>()
        .join(",");
    run(format!(
        "INSERT INTO organisation (pid, parent_id, kind, name, path, head_count, created_at) \
         SELECT gen_random_uuid()::text, o.parent_id, o.kind, '压测工会' || g, o.path || 'b' || g, 100, now() \
         FROM organisation o, generate_series(1, {unions}) g WHERE o.name = (SELECT o2.name FROM organisation o2 \
           JOIN member m ON m.organisation_id = o2.id WHERE m.pid = '{}')",
        p.member_pid
    ))
    .await;
    // A union's path ends with its own id, as the application writes it.
    run(
        "UPDATE organisation c SET path = p.path || c.id || '/' FROM organisation p \
         WHERE c.parent_id = p.id AND c.name LIKE '压测工会%'"
            .into(),
    )
    .await;
    run(format!(
        "INSERT INTO member (pid, organisation_id, name, id_number_cipher, id_number_lookup, birth_date, sex, \
           phone_cipher, phone_lookup, bank_card_cipher, bank_card_lookup, wechat_openid, retired, token_generation, \
           created_at, updated_at) \
         SELECT gen_random_uuid()::text, u.id, m.name, m.id_number_cipher, md5(u.id || ':' || g), m.birth_date, m.sex, \
           m.phone_cipher, md5('p' || u.id || ':' || g), m.bank_card_cipher, m.bank_card_lookup, NULL, m.retired, 0, now(), now() \
         FROM member m, organisation u, generate_series(1, {per_union}) g \
         WHERE m.pid = '{}' AND u.name LIKE '压测工会%'",
        p.member_pid
    ))
    .await;
    run(format!(
        "INSERT INTO membership (pid, member_id, organisation_id, scheme_code, coverage_start, coverage_end, status, \
           consecutive_periods, continuous_renewal, created_at, enrolment_batch_id, fee_fen, allowance_paid, extension_id, \
           source, ledger_seq, offset_fen) \
         SELECT gen_random_uuid()::text, b.id, b.organisation_id, t.scheme_code, t.coverage_start, t.coverage_end, t.status, \
           t.consecutive_periods, t.continuous_renewal, now(), NULL, t.fee_fen, false, NULL, t.source, 1, 0 \
         FROM membership t, member b WHERE t.pid = '{}' \
           AND b.organisation_id IN (SELECT id FROM organisation WHERE name LIKE '压测工会%')",
        p.membership_pid
    ))
    .await;
    let columns = "scheme_code, kind, facts, status, stages, stage, version, filed_by_kind, \
         beneficiary_name, beneficiary_id_number_cipher, beneficiary_relationship, payee_name, payee_bank_card_cipher, \
         return_requests, flagged, scheme_version, judgement, payable_fen, approved_fen, adjustment_reason, period_seq, \
         reject_reason, reject_note, created_at, updated_at, submitted_at, first_submitted_at, approved_at, pay_due_on, \
         pay_due_max_on, paid_at, closed_at, payout_failure";
    let from_template = columns
        .split(',')
        .map(|c| format!("t.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ");
    run(format!(
        "WITH t AS (SELECT row_number() OVER (ORDER BY id) - 1 AS k, * FROM claim WHERE pid IN ({template_list})), \
              n AS (SELECT COUNT(*) AS n FROM t) \
         INSERT INTO claim (pid, member_id, membership_id, organisation_id, member_pid, member_name, \
           membership_pid, filed_by_pid, {columns}) \
         SELECT gen_random_uuid()::text, b.id, ms.id, b.organisation_id, b.pid, b.name, ms.pid, b.pid, {from_template} \
         FROM member b JOIN membership ms ON ms.member_id = b.id, generate_series(1, {per_member}) g, n, t \
         WHERE b.organisation_id IN (SELECT id FROM organisation WHERE name LIKE '压测工会%') \
           AND t.k = (b.id + g) % n.n"
    ))
    .await;
    // A few flagged claims, as the checks flag them, for the flagged queue.
    run("UPDATE claim SET flagged = true WHERE id % 50 = 0 AND status <> 'draft'".into()).await;
    run("ANALYZE".into()).await;
    let count = |sql: &'static str| async move {
        db.query_one_raw(Statement::from_string(db.get_database_backend(), sql))
            .await
            .expect("count")
            .expect("row")
            .try_get_by_index::<i64>(0)
            .expect("n")
    };
    let claims = count("SELECT COUNT(*) FROM claim").await;
    let members = count("SELECT COUNT(*) FROM member").await;
    let organisations = count("SELECT COUNT(*) FROM organisation").await;

    // Distinct 12 MP phone photos for the upload measure (BENCH_PHOTOS of them).
    let photos = app.data_dir.0.join("photos");
    std::fs::create_dir_all(&photos).expect("photos dir");
    let n: u64 = std::env::var("BENCH_PHOTOS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12);
    for seed in 0..n {
        std::fs::write(
            photos.join(format!("{seed:03}.jpg")),
            twelve_megapixel_jpeg(1000 + seed),
        )
        .expect("photo");
    }

    // 10,000-row rosters for the import measure (BENCH_ROSTERS of them, distinct people), each
    // also as CSV for its anchor (`COPY` of the same rows), and the scheme's enrolment window
    // opened around the bench's day so that the rosters are accepted.
    let rosters = app.data_dir.0.join("rosters");
    std::fs::create_dir_all(&rosters).expect("rosters dir");
    let roster_count: u32 = std::env::var("BENCH_ROSTERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let roster_scheme = "nm-inpatient-2025";
    let roster_union = "union-dairy";
    let mut roster_unit = String::new();
    if roster_count > 0 {
        let admin = app.login("admin").await;
        let (_, current) = app
            .get(&format!("/api/v1/schemes/{roster_scheme}"), None)
            .await;
        let mut def = current["definition"].clone();
        def["enrolment"]["opens"] = json!("2025-08-01");
        def["enrolment"]["closes"] = json!("2025-12-31");
        let (status, body) = app
            .post(
                &format!("/api/v1/schemes/{roster_scheme}/versions"),
                Some(&admin),
                &def,
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let clerk = app.login(roster_union).await;
        roster_unit = app.unit_id(&clerk, "呼和浩特乳业集团工会").await;
    }
    for i in 0..roster_count {
        let people = huzhu_tests::roster::people(10_000, 50 + i);
        std::fs::write(
            rosters.join(format!("{i}.xlsx")),
            huzhu_tests::roster::xlsx(&people),
        )
        .expect("roster");
        let csv: String = people
            .iter()
            .enumerate()
            .map(|(n, l)| {
                format!(
                    "{},{},{},{},本单位,{},{}\n",
                    n + 1,
                    l.name,
                    l.id_number,
                    l.phone,
                    l.insured,
                    l.status
                )
            })
            .collect();
        std::fs::write(rosters.join(format!("{i}.csv")), csv).expect("roster csv");
    }

    // Leave the database and the data directory (the demo's keys) to the harness.
    let pg = app.pg.take().expect("postgres");
    let url = pg.url.clone();
    std::mem::forget(pg);
    let data_dir = app.data_dir.0.clone();
    std::mem::forget(app);
    println!(
        "{}",
        json!({
            "database_url": url,
            "data_dir": data_dir,
            "member": p.member_pid,
            "union": "union-power",
            "association": "association",
            "draft_claim": draft_for_photos,
            "photos": photos,
            "rosters": rosters,
            "roster_count": roster_count,
            "roster_union": roster_union,
            "roster_unit": roster_unit,
            "roster_scheme": roster_scheme,
            "claims": claims,
            "members": members,
            "organisations": organisations,
        })
    );
}
