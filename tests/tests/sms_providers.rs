//! The SMS clients against the fake Tencent and Aliyun gateways, over real HTTP on loopback:
//! signatures, per-number outcomes, whole-request errors, timeouts on either side of
//! acceptance and the look-ups that settle them, receipts, and the log provider.

use chrono::{DateTime, Utc};
use huzhu::integrations::sms::aliyun::AliyunSms;
use huzhu::integrations::sms::log::LogSms;
use huzhu::integrations::sms::tencent::TencentSms;
use huzhu::integrations::sms::{Lookup, Outcome, Receipt, Sms, SmsBatch, SmsProvider};
use huzhu::settings::{Settings, SmsSettings};
use huzhu_tests::fake_sms::{FakeAliyun, FakeGateway, FakeTencent, Pattern};
use secrecy::SecretString;

const ALICE: &str = "13912341234";
const BOB: &str = "13800138000";
const CAROL: &str = "15012345678";

fn tencent(settings: &SmsSettings) -> TencentSms {
    TencentSms::new(settings).expect("Tencent client from the fake's settings")
}

fn aliyun(settings: &SmsSettings) -> AliyunSms {
    AliyunSms::new(settings).expect("Aliyun client from the fake's settings")
}

fn batch(fake: &FakeGateway, messages: &[(&str, &str)]) -> SmsBatch {
    SmsBatch {
        template: "SMS_1234567".to_owned(),
        params: vec![
            ("claim".to_owned(), "A1024".to_owned()),
            ("amount".to_owned(), "3600".to_owned()),
        ],
        sign_name: fake.sign_name.clone(),
        messages: messages
            .iter()
            .map(|(id, phone)| Sms {
                message_id: (*id).to_owned(),
                phone: (*phone).to_owned(),
            })
            .collect(),
    }
}

fn outcome<'a>(outcomes: &'a [(String, Outcome)], id: &str) -> &'a Outcome {
    &outcomes
        .iter()
        .find(|(message_id, _)| message_id == id)
        .unwrap_or_else(|| panic!("no outcome for message {id}"))
        .1
}

fn accepted_id(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Accepted { provider_id } => provider_id.clone(),
        other => panic!("expected Accepted, got {other:?}"),
    }
}

fn assert_rejected(outcome: &Outcome, expected_code: &str, expected_permanent: bool) {
    match outcome {
        Outcome::Rejected {
            code, permanent, ..
        } => {
            assert_eq!(code, expected_code);
            assert_eq!(*permanent, expected_permanent, "permanence of {code}");
        }
        other => panic!("expected Rejected {expected_code}, got {other:?}"),
    }
}

fn assert_unknown(outcome: &Outcome) {
    assert!(
        matches!(outcome, Outcome::Unknown { .. }),
        "expected Unknown, got {outcome:?}"
    );
}

/// A moment safely before the call, as the dispatcher records its attempt.
fn attempt() -> DateTime<Utc> {
    Utc::now() - chrono::TimeDelta::seconds(1)
}

fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

// ---------------------------------------------------------------------------------------------
// Tencent
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn tencent_sends_one_signed_call_and_gives_each_message_its_serial_number() {
    let fake = FakeTencent::start().await;
    let client = tencent(&fake.settings());
    let outcomes = client
        .send(&batch(
            &fake,
            &[("101", ALICE), ("102", BOB), ("103", CAROL)],
        ))
        .await;

    assert_eq!(
        outcomes
            .iter()
            .map(|(id, _)| id.as_str())
            .collect::<Vec<_>>(),
        ["101", "102", "103"],
        "outcomes come in the batch's order"
    );
    assert_eq!(fake.send_requests(), 1);
    assert_eq!(fake.refused_signatures(), 0);
    let sent = fake.sent();
    for (id, phone) in [("101", ALICE), ("102", BOB), ("103", CAROL)] {
        assert_eq!(fake.delivered(id), 1);
        let record = sent.iter().find(|s| s.message_id == id).unwrap();
        assert_eq!(record.phone, phone);
        assert_eq!(record.context, "101,102,103");
        assert_eq!(record.template, "SMS_1234567");
        assert_eq!(
            record.params,
            [
                ("1".to_owned(), "A1024".to_owned()),
                ("2".to_owned(), "3600".to_owned())
            ]
        );
        assert_eq!(accepted_id(outcome(&outcomes, id)), record.provider_id);
    }
}

#[tokio::test]
async fn tencent_refuses_a_wrong_secret_and_every_message_is_rejected_for_good() {
    let fake = FakeTencent::start().await;
    let mut settings = fake.settings();
    settings.secret_key = Some(SecretString::from("not-the-secret".to_owned()));
    let outcomes = tencent(&settings)
        .send(&batch(&fake, &[("1", ALICE), ("2", BOB)]))
        .await;

    for (_, outcome) in &outcomes {
        assert_rejected(outcome, "AuthFailure.SignatureFailure", true);
    }
    assert_eq!(fake.refused_signatures(), 1);
    assert!(fake.sent().is_empty());
}

#[tokio::test]
async fn tencent_outcomes_of_each_number_reach_their_own_message() {
    let fake = FakeTencent::start().await;
    fake.reject_number(BOB, "InvalidParameterValue.IncorrectPhoneNumber");
    fake.reject_number(CAROL, "LimitExceeded.PhoneNumberDailyLimit");
    let outcomes = tencent(&fake.settings())
        .send(&batch(
            &fake,
            &[("1", ALICE), ("2", BOB), ("3", CAROL), ("4", "12345")],
        ))
        .await;

    accepted_id(outcome(&outcomes, "1"));
    assert_rejected(
        outcome(&outcomes, "2"),
        "InvalidParameterValue.IncorrectPhoneNumber",
        true,
    );
    assert_rejected(
        outcome(&outcomes, "3"),
        "LimitExceeded.PhoneNumberDailyLimit",
        false,
    );
    // Never sent: refused before any call.
    assert_rejected(outcome(&outcomes, "4"), "huzhu.invalid_phone", true);
    assert_eq!(fake.delivered("1"), 1);
    assert_eq!(fake.sent().len(), 1);
}

#[tokio::test]
async fn tencent_a_whole_request_error_applies_to_every_message() {
    let fake = FakeTencent::start().await;
    let client = tencent(&fake.settings());

    fake.fail_next("FailedOperation.InsufficientBalanceInSmsPackage");
    let outcomes = client
        .send(&batch(&fake, &[("1", ALICE), ("2", BOB)]))
        .await;
    for (_, outcome) in &outcomes {
        assert_rejected(
            outcome,
            "FailedOperation.InsufficientBalanceInSmsPackage",
            false,
        );
    }

    // An internal error of Tencent's does not say whether the messages went out.
    fake.fail_next("InternalError");
    let outcomes = client
        .send(&batch(&fake, &[("3", ALICE), ("4", BOB)]))
        .await;
    for (_, outcome) in &outcomes {
        assert_unknown(outcome);
    }
    assert!(fake.sent().is_empty());
}

#[tokio::test]
async fn tencent_a_timeout_after_accepting_is_unknown_and_the_lookup_finds_the_messages() {
    let fake = FakeTencent::start().await;
    let client = tencent(&fake.settings());
    fake.time_out_after_accepting(Pattern::Next(1));
    let attempted_at = attempt();
    let outcomes = client
        .send(&batch(&fake, &[("7", ALICE), ("8", BOB)]))
        .await;

    assert_unknown(outcome(&outcomes, "7"));
    assert_unknown(outcome(&outcomes, "8"));
    assert_eq!(
        fake.delivered("7"),
        1,
        "it went out although we do not know it"
    );
    let sent = fake.sent();
    for (id, phone) in [("7", ALICE), ("8", BOB)] {
        let serial = sent
            .iter()
            .find(|s| s.message_id == id)
            .unwrap()
            .provider_id
            .clone();
        assert_eq!(
            sent_id(client.lookup(phone, attempted_at, id, None).await),
            Some(Some(serial))
        );
    }
    // Another message to the same number was not in that call.
    assert_eq!(
        client.lookup(ALICE, attempted_at, "70", None).await,
        Lookup::NotSent
    );
    assert_eq!(fake.lookups(), 3);
}

#[tokio::test]
async fn tencent_a_timeout_before_accepting_is_unknown_and_the_lookup_answers_not_sent() {
    let fake = FakeTencent::start().await;
    let client = tencent(&fake.settings());
    fake.time_out_before_accepting(Pattern::Phone(ALICE.to_owned()));
    let attempted_at = attempt();
    let started = std::time::Instant::now();
    let outcomes = client.send(&batch(&fake, &[("9", ALICE)])).await;

    assert_unknown(outcome(&outcomes, "9"));
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
    assert_eq!(fake.delivered("9"), 0);
    assert_eq!(
        client.lookup(ALICE, attempted_at, "9", None).await,
        Lookup::NotSent
    );
}

#[tokio::test]
async fn tencent_lookup_cannot_tell_messages_apart_without_session_context() {
    let fake = FakeTencent::start().await;
    let client = tencent(&fake.settings());
    fake.hide_session_context();
    let attempted_at = attempt();
    let outcomes = client.send(&batch(&fake, &[("11", ALICE)])).await;
    let serial = accepted_id(outcome(&outcomes, "11"));

    assert!(matches!(
        client.lookup(ALICE, attempted_at, "12", None).await,
        Lookup::Unknown { .. }
    ));
    // With the serial number known, the record is found by it.
    assert_eq!(
        sent_id(
            client
                .lookup(ALICE, attempted_at, "11", Some(&serial))
                .await
        ),
        Some(Some(serial))
    );
}

#[tokio::test]
async fn tencent_not_found_is_not_believed_within_the_grace_period() {
    let fake = FakeTencent::start().await;
    let mut settings = fake.settings();
    settings.lookup_grace_seconds = 600;
    let client = tencent(&settings);
    assert!(matches!(
        client.lookup(ALICE, attempt(), "13", None).await,
        Lookup::Unknown { .. }
    ));
}

#[tokio::test]
async fn tencent_short_params_are_cut_to_six_characters_before_sending() {
    let fake = FakeTencent::start().await;
    fake.limit_param_chars(6);
    let mut message = batch(&fake, &[("14", ALICE)]);
    message.params = vec![
        ("date".to_owned(), "12月31日前".to_owned()),
        ("name".to_owned(), "张三".to_owned()),
    ];

    let outcomes = tencent(&fake.settings()).send(&message).await;
    assert_rejected(
        outcome(&outcomes, "14"),
        "InvalidParameterValue.TemplateParameterLengthLimit",
        true,
    );

    let mut settings = fake.settings();
    settings.short_params = true;
    let outcomes = tencent(&settings).send(&message).await;
    accepted_id(outcome(&outcomes, "14"));
    assert_eq!(
        fake.sent()[0].params,
        [
            (
                "1".to_owned(),
                "12月31日前".chars().take(6).collect::<String>()
            ),
            ("2".to_owned(), "张三".to_owned())
        ]
    );
}

#[tokio::test]
async fn tencent_fail_every_two_fails_half_the_calls_without_sending() {
    let fake = FakeTencent::start().await;
    let client = tencent(&fake.settings());
    fake.fail_every(2);
    let mut accepted = 0;
    for id in 0..4 {
        let id = id.to_string();
        let outcomes = client.send(&batch(&fake, &[(&id, ALICE)])).await;
        match outcome(&outcomes, &id) {
            Outcome::Accepted { .. } => accepted += 1,
            other => assert_rejected(other, "RequestLimitExceeded", false),
        }
    }
    assert_eq!(accepted, 2);
    assert_eq!(fake.sent().len(), 2);
    assert_eq!(fake.send_requests(), 4);
}

#[tokio::test]
async fn tencent_a_big_batch_is_split_into_calls_under_tencents_limits() {
    let fake = FakeTencent::start().await;
    let ids: Vec<String> = (0..250).map(|i| format!("m{i}")).collect();
    let phones: Vec<String> = (0..250).map(|i| format!("139{i:08}")).collect();
    let mut messages: Vec<(&str, &str)> = ids
        .iter()
        .map(String::as_str)
        .zip(phones.iter().map(String::as_str))
        .collect();
    // The same number twice in one batch never shares a call.
    messages.push(("again", "13900000000"));
    let outcomes = tencent(&fake.settings())
        .send(&batch(&fake, &messages))
        .await;

    assert_eq!(outcomes.len(), 251);
    assert!(
        outcomes
            .iter()
            .all(|(_, o)| matches!(o, Outcome::Accepted { .. }))
    );
    assert!(fake.send_requests() >= 2);
    assert!(fake.sent().iter().all(|s| s.context.len() < 512));
    assert!(ids.iter().all(|id| fake.delivered(id) == 1));
    assert_eq!(fake.delivered("again"), 1);
}

#[tokio::test]
async fn tencent_a_refused_connection_is_a_transient_rejection() {
    let fake = FakeTencent::start().await;
    let mut settings = fake.settings();
    settings.tencent_base_url = closed_port_url();
    let outcomes = tencent(&settings)
        .send(&batch(&fake, &[("1", ALICE)]))
        .await;
    assert_rejected(outcome(&outcomes, "1"), "huzhu.connect_failed", false);
    assert!(matches!(
        tencent(&settings).lookup(ALICE, attempt(), "1", None).await,
        Lookup::Unknown { .. }
    ));
}

#[test]
fn tencent_receipts_are_read() {
    let body = r#"[
        {"user_receive_time": "2015-10-17 08:03:04", "nationcode": "86", "mobile": "13900000001",
         "report_status": "SUCCESS", "errmsg": "DELIVRD", "description": "用户短信送达成功",
         "sid": "2645:104000000000000000000001"},
        {"user_receive_time": "2015-10-17 08:03:05", "nationcode": "86", "mobile": "13900000002",
         "report_status": "FAIL", "errmsg": "MK:0001", "description": "空号",
         "sid": "2645:104000000000000000000002"}
    ]"#;
    let receipts = huzhu::integrations::sms::tencent::parse_receipts(body.as_bytes()).unwrap();
    assert_eq!(
        receipts,
        vec![
            Receipt {
                provider_id: Some("2645:104000000000000000000001".to_owned()),
                message_id: None,
                phone: "13900000001".to_owned(),
                delivered: true,
                code: None,
                description: Some("用户短信送达成功".to_owned()),
                at: Some("2015-10-17T00:03:04Z".parse().unwrap()),
            },
            Receipt {
                provider_id: Some("2645:104000000000000000000002".to_owned()),
                message_id: None,
                phone: "13900000002".to_owned(),
                delivered: false,
                code: Some("MK:0001".to_owned()),
                description: Some("空号".to_owned()),
                at: Some("2015-10-17T00:03:05Z".parse().unwrap()),
            },
        ]
    );
    assert_eq!(
        huzhu::integrations::sms::tencent::RECEIPT_ANSWER,
        r#"{"result":0,"errmsg":"OK"}"#
    );
    assert!(huzhu::integrations::sms::tencent::parse_receipts(b"[{\"mobile\": 1}]").is_err());
    assert!(
        huzhu::integrations::sms::tencent::parse_receipts(
            br#"[{"mobile":"13900000001","report_status":"MAYBE"}]"#
        )
        .is_err()
    );
}

// ---------------------------------------------------------------------------------------------
// Aliyun
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn aliyun_sends_one_signed_call_per_message_with_our_id_as_out_id() {
    let fake = FakeAliyun::start().await;
    let client = aliyun(&fake.settings());
    assert_eq!(client.max_batch(), 1);
    let outcomes = client
        .send(&batch(&fake, &[("201", ALICE), ("202", BOB)]))
        .await;

    assert_eq!(fake.send_requests(), 2);
    assert_eq!(fake.refused_signatures(), 0);
    let sent = fake.sent();
    for (id, phone) in [("201", ALICE), ("202", BOB)] {
        let record = sent.iter().find(|s| s.context == id).unwrap();
        assert_eq!(record.phone, phone);
        let mut params = record.params.clone();
        params.sort();
        assert_eq!(
            params,
            [
                ("amount".to_owned(), "3600".to_owned()),
                ("claim".to_owned(), "A1024".to_owned())
            ]
        );
        assert_eq!(accepted_id(outcome(&outcomes, id)), record.provider_id);
        assert_eq!(fake.delivered(id), 1);
    }
}

#[tokio::test]
async fn aliyun_refuses_a_wrong_secret_and_the_message_is_rejected_for_good() {
    let fake = FakeAliyun::start().await;
    let mut settings = fake.settings();
    settings.secret_key = Some(SecretString::from("not-the-secret".to_owned()));
    let outcomes = aliyun(&settings).send(&batch(&fake, &[("1", ALICE)])).await;
    assert_rejected(outcome(&outcomes, "1"), "SignatureDoesNotMatch", true);
    assert_eq!(fake.refused_signatures(), 1);

    let mut settings = fake.settings();
    settings.secret_id = Some("LTAIunknown".to_owned());
    let outcomes = aliyun(&settings).send(&batch(&fake, &[("1", ALICE)])).await;
    assert_rejected(outcome(&outcomes, "1"), "InvalidAccessKeyId.NotFound", true);
    assert!(fake.sent().is_empty());
}

#[tokio::test]
async fn aliyun_refusals_of_a_number_and_its_limits_are_told_apart() {
    let fake = FakeAliyun::start().await;
    fake.reject_number(BOB, "isv.MOBILE_NUMBER_ILLEGAL");
    fake.limit_per_number(1);
    let outcomes = aliyun(&fake.settings())
        .send(&batch(&fake, &[("1", ALICE), ("2", BOB), ("3", ALICE)]))
        .await;
    accepted_id(outcome(&outcomes, "1"));
    assert_rejected(outcome(&outcomes, "2"), "isv.MOBILE_NUMBER_ILLEGAL", true);
    assert_rejected(outcome(&outcomes, "3"), "isv.BUSINESS_LIMIT_CONTROL", false);
}

#[tokio::test]
async fn aliyun_errors_that_leave_the_message_in_doubt_are_unknown() {
    let fake = FakeAliyun::start().await;
    let client = aliyun(&fake.settings());
    fake.fail_next("InternalError"); // HTTP 500
    fake.fail_next("isp.SYSTEM_ERROR");
    fake.fail_next("isv.OUT_OF_SERVICE");
    let outcomes = client
        .send(&batch(&fake, &[("1", ALICE), ("2", BOB), ("3", CAROL)]))
        .await;
    assert_unknown(outcome(&outcomes, "1"));
    assert_unknown(outcome(&outcomes, "2"));
    assert_rejected(outcome(&outcomes, "3"), "isv.OUT_OF_SERVICE", false);
}

#[tokio::test]
async fn aliyun_a_timeout_after_accepting_is_unknown_and_the_lookup_finds_the_message() {
    let fake = FakeAliyun::start().await;
    let client = aliyun(&fake.settings());
    fake.time_out_after_accepting(Pattern::Every);
    let attempted_at = attempt();
    let outcomes = client.send(&batch(&fake, &[("21", ALICE)])).await;

    assert_unknown(outcome(&outcomes, "21"));
    assert_eq!(fake.delivered("21"), 1);
    assert_eq!(
        sent_id(client.lookup(ALICE, attempted_at, "21", None).await),
        Some(None)
    );
    let biz_id = fake.sent()[0].provider_id.clone();
    assert_eq!(
        sent_id(
            client
                .lookup(ALICE, attempted_at, "21", Some(&biz_id))
                .await
        ),
        Some(Some(biz_id))
    );
    assert_eq!(
        client.lookup(ALICE, attempted_at, "22", None).await,
        Lookup::NotSent
    );
}

#[tokio::test]
async fn aliyun_a_timeout_before_accepting_is_unknown_and_the_lookup_answers_not_sent() {
    let fake = FakeAliyun::start().await;
    let client = aliyun(&fake.settings());
    fake.time_out_before_accepting(Pattern::Next(1));
    let attempted_at = attempt();
    let outcomes = client
        .send(&batch(&fake, &[("31", ALICE), ("32", BOB)]))
        .await;

    assert_unknown(outcome(&outcomes, "31"));
    accepted_id(outcome(&outcomes, "32"));
    assert_eq!(fake.delivered("31"), 0);
    assert_eq!(
        client.lookup(ALICE, attempted_at, "31", None).await,
        Lookup::NotSent
    );
}

#[tokio::test]
async fn aliyun_lookup_pages_through_a_busy_day() {
    let fake = FakeAliyun::start().await;
    let client = aliyun(&fake.settings());
    let attempted_at = attempt();
    let ids: Vec<String> = (0..60).map(|i| format!("busy{i}")).collect();
    for id in &ids {
        let outcomes = client.send(&batch(&fake, &[(id, ALICE)])).await;
        accepted_id(outcome(&outcomes, id));
    }
    assert_eq!(
        sent_id(client.lookup(ALICE, attempted_at, "busy0", None).await),
        Some(None)
    );
    assert_eq!(
        sent_id(client.lookup(ALICE, attempted_at, "busy59", None).await),
        Some(None)
    );
}

#[test]
fn aliyun_receipts_are_read() {
    let body = r#"[
        {"phone_number": "13811110000", "send_time": "2017-01-01 00:00:00",
         "report_time": "2017-01-01 00:00:05", "success": true, "err_code": "DELIVERED",
         "err_msg": "用户接收成功", "sms_size": "1", "biz_id": "12345", "out_id": "67890"},
        {"phone_number": "13811110001", "send_time": "2017-01-01 00:00:00",
         "report_time": "2017-01-01 00:01:00", "success": false, "err_code": "MK:0000",
         "err_msg": "空号", "sms_size": "1", "biz_id": "12346", "out_id": ""}
    ]"#;
    let receipts = huzhu::integrations::sms::aliyun::parse_receipts(body.as_bytes()).unwrap();
    assert_eq!(
        receipts,
        vec![
            Receipt {
                provider_id: Some("12345".to_owned()),
                message_id: Some("67890".to_owned()),
                phone: "13811110000".to_owned(),
                delivered: true,
                code: None,
                description: Some("用户接收成功".to_owned()),
                at: Some("2016-12-31T16:00:05Z".parse().unwrap()),
            },
            Receipt {
                provider_id: Some("12346".to_owned()),
                message_id: None,
                phone: "13811110001".to_owned(),
                delivered: false,
                code: Some("MK:0000".to_owned()),
                description: Some("空号".to_owned()),
                at: Some("2016-12-31T16:01:00Z".parse().unwrap()),
            },
        ]
    );
    assert_eq!(
        huzhu::integrations::sms::aliyun::RECEIPT_ANSWER,
        r#"{"code":0,"msg":"接收成功"}"#
    );
    assert!(huzhu::integrations::sms::aliyun::parse_receipts(b"not json").is_err());
}

// ---------------------------------------------------------------------------------------------
// The log provider and the choice of provider
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_log_provider_accepts_and_remembers_what_it_logged() {
    let log = LogSms::new(false);
    let outcomes = log
        .send(&SmsBatch {
            template: "claim_paid".to_owned(),
            params: vec![("amount".to_owned(), "3600".to_owned())],
            sign_name: "职工互助".to_owned(),
            messages: vec![
                Sms {
                    message_id: "41".to_owned(),
                    phone: ALICE.to_owned(),
                },
                Sms {
                    message_id: "42".to_owned(),
                    phone: "not a number".to_owned(),
                },
            ],
        })
        .await;
    assert_eq!(accepted_id(outcome(&outcomes, "41")), "log-41");
    assert_rejected(outcome(&outcomes, "42"), "huzhu.invalid_phone", true);
    assert_eq!(
        sent_id(log.lookup(ALICE, attempt(), "41", None).await),
        Some(Some("log-41".to_owned()))
    );
    assert_eq!(
        log.lookup(ALICE, attempt(), "43", None).await,
        Lookup::NotSent
    );
}

#[tokio::test]
async fn the_configured_provider_is_built_from_settings() {
    let tencent_fake = FakeTencent::start().await;
    let aliyun_fake = FakeAliyun::start().await;
    for (sms, name) in [
        (tencent_fake.settings(), "tencent"),
        (aliyun_fake.settings(), "aliyun"),
        (SmsSettings::default(), "log"),
    ] {
        let settings = Settings {
            sms,
            ..Settings::default()
        };
        let provider =
            huzhu::integrations::sms::provider(&settings).expect("provider from settings");
        assert_eq!(provider.name(), name);
    }
    let outcomes = huzhu::integrations::sms::provider(&Settings {
        sms: tencent_fake.settings(),
        ..Settings::default()
    })
    .unwrap()
    .send(&batch(&tencent_fake, &[("51", ALICE)]))
    .await;
    accepted_id(outcome(&outcomes, "51"));
}

/// The provider's id of a message a look-up found sent; `None` when it did not find it sent.
fn sent_id(lookup: Lookup) -> Option<Option<String>> {
    match lookup {
        Lookup::Sent { provider_id, .. } => Some(provider_id),
        _ => None,
    }
}
