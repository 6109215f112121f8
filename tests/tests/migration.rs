//! The move from one machine to AWS, end to end with the release `giftify` binary: a load run
//! on the embedded backend fills a data dir; `giftify migrate --from-data-dir <dir> --to aws`
//! copies it into a new stage on moto, SIGKILLed in the middle and run again to finish, then
//! once more (which must change nothing); and `giftify serve` on the stage must answer for
//! every account what the machine answered: the same balances, ledgers, orders and card
//! numbers, and the money and stock invariants, checked through HTTP as the crash test checks
//! them.

#[path = "api/invariants.rs"]
mod invariants;
#[allow(dead_code)]
#[path = "load/mod.rs"]
mod load;
#[allow(dead_code)]
#[path = "api/support.rs"]
mod support;

use crate::invariants::{Api, all_pages, assert_conserved, balance, stock_by_variant};
use crate::load::{HttpApi, Shop};
use crate::support::TestUser;
use giftify_tests::moto::{TEST_JWT_SECRET, moto, unique_stage};
use giftify_tests::process::{Deployment, Http};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

const SHOPPERS: usize = 4;
const SHOPPING: Duration = Duration::from_secs(2);

/// What an account looks like through the API: balance, ledger, orders (with their cards).
async fn account_view(api: &impl Api, user: &TestUser) -> Value {
    let orders = all_pages(api, "/orders", &user.token, "orders").await;
    let mut details = Vec::new();
    for order in &orders {
        let id = order["orderId"].as_str().expect("orderId");
        let detail = api.get(&format!("/orders/{id}"), Some(&user.token)).await;
        details.push(detail.data()["status"].clone());
        details.push(detail.data()["giftCards"].clone());
    }
    json!({
        "balance": balance(api, user).await,
        "ledger": all_pages(api, "/wallet/transactions", &user.token, "transactions").await,
        "orders": orders,
        "details": details,
    })
}

async fn sign_in(http: &Http, email: &str) -> String {
    let response = http
        .post(
            "/auth/login",
            None,
            &json!({"email": email, "password": load::PASSWORD}),
        )
        .await
        .expect("login answers");
    assert_eq!(response.status, 200, "login of {email}: {}", response.body);
    response.body["data"]["accessToken"]
        .as_str()
        .expect("accessToken")
        .to_string()
}

/// The number of a card revealed through the API.
async fn reveal(http: &Http, token: &str, order: &str, card: &str) -> String {
    let revealed = http
        .send(
            reqwest::Method::POST,
            &format!("/orders/{order}/gift-cards/{card}/reveal"),
            Some(token),
            None,
            &[],
        )
        .await
        .expect("reveal answers");
    assert_eq!(revealed.status, 200, "reveal: {}", revealed.body);
    revealed.body["data"]["giftCardNumber"]
        .as_str()
        .expect("number")
        .to_string()
}

/// The feed after `cursor` (from the start with `None`): each event's id, and the last cursor.
async fn feed_after(
    http: &Http,
    token: &str,
    cursor: Option<&str>,
    limit: u32,
) -> (Vec<String>, String) {
    let (mut ids, mut cursor) = (Vec::new(), cursor.map(str::to_string));
    loop {
        let path = match &cursor {
            Some(after) => format!("/events?limit={limit}&after={after}"),
            None => format!("/events?limit={limit}"),
        };
        let page = http.get(&path, Some(token)).await.expect("feed answers");
        assert_eq!(page.status, 200, "{path}: {}", page.body);
        let data = &page.body["data"];
        ids.extend(
            data["events"]
                .as_array()
                .expect("events")
                .iter()
                .map(|e| e["eventId"].as_str().expect("eventId").to_string()),
        );
        cursor = Some(data["nextCursor"].as_str().expect("nextCursor").to_string());
        if !data["hasMore"].as_bool().expect("hasMore") || limit < 100 {
            return (ids, cursor.unwrap_or_default());
        }
    }
}

fn progress_part(dir: &std::path::Path, stage: &str) -> Option<Value> {
    let raw = std::fs::read(dir.join(format!("migration-{stage}.json"))).ok()?;
    serde_json::from_slice(&raw).ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_load_run_moves_to_aws_through_a_crash_and_answers_the_same_there() {
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().join("data");

    // 1. A load run on the machine.
    let machine = Deployment::new(&data_dir, &[]);
    let http = Http::new(&machine.base_url(), Duration::from_secs(10));
    let mut server = machine.spawn("server", &["serve"]);
    http.wait_until_healthy(&mut server, Duration::from_secs(30))
        .await;
    let admin_token = load::admin_token(&http).await;
    let api = HttpApi {
        http: http.clone(),
        admin_token: admin_token.clone(),
    };
    let initial_stock = stock_by_variant(&api).await;
    let mut users = Vec::new();
    for i in 0..SHOPPERS {
        let user =
            load::register(&http, &format!("move{i}-{}@example.in", std::process::id())).await;
        let funded = http
            .send(
                reqwest::Method::POST,
                "/wallet/topup",
                Some(&user.token),
                Some(&json!({"amount": 2_000_000})),
                &[("Idempotency-Key", &format!("fund-{i}"))],
            )
            .await
            .expect("top-up answers");
        assert_eq!(funded.status, 200, "{}", funded.body);
        users.push(user);
    }
    let shop = Arc::new(Shop {
        http: http.clone(),
        variants: load::variants(&http, &admin_token).await,
        chaos: false,
        give_up_at: Instant::now() + SHOPPING + Duration::from_secs(30),
    });
    let until = Instant::now() + SHOPPING;
    let shoppers: Vec<_> = users
        .iter()
        .enumerate()
        .map(|(index, user)| {
            let (shop, user) = (shop.clone(), user.clone());
            tokio::spawn(
                async move { load::shopper(&shop, index, user, 7 + index as u64, until).await },
            )
        })
        .collect();
    let mut requests = 0;
    for shopper in shoppers {
        let (tally, _) = shopper.await.expect("a shopper");
        assert!(tally.violations.is_empty(), "{:?}", tally.violations);
        requests += tally.requests;
    }
    load::wait_until_settled(
        &http,
        &admin_token,
        Duration::from_secs(20),
        Duration::from_secs(60),
    )
    .await
    .expect("the machine settles");
    assert_conserved(&api, &users, &initial_stock).await;
    let mut before = BTreeMap::new();
    for user in &users {
        before.insert(user.email.clone(), account_view(&api, user).await);
    }
    let stock_before = stock_by_variant(&api).await;
    // A card to reveal on both sides: the stage must open what the machine sealed.
    let (owner, order, card) = users
        .iter()
        .find_map(|user| {
            let view = &before[&user.email];
            view["orders"]
                .as_array()?
                .iter()
                .zip(view["details"].as_array()?.chunks(2))
                .find_map(|(order, detail)| {
                    let card = detail[1]
                        .as_array()?
                        .iter()
                        .find(|c| c["status"] == "ACTIVE")?;
                    Some((
                        user.clone(),
                        order["orderId"].as_str()?.to_string(),
                        card["giftCardId"].as_str()?.to_string(),
                    ))
                })
        })
        .expect("the load run issued a card that is still active");
    let number = reveal(&http, &owner.token, &order, &card).await;
    // The reveal is recorded: view the owner again.
    before.insert(owner.email.clone(), account_view(&api, &owner).await);
    // Integrators' cursors, part-way through the feed of all events and through a user's.
    let (_, all_cursor) = feed_after(&http, &admin_token, None, 7).await;
    let (all_rest, _) = feed_after(&http, &admin_token, Some(&all_cursor), 100).await;
    let (_, user_cursor) = feed_after(&http, &owner.token, None, 3).await;
    let (user_rest, _) = feed_after(&http, &owner.token, Some(&user_cursor), 100).await;
    assert!(
        !all_rest.is_empty() && !user_rest.is_empty(),
        "the load run recorded events"
    );
    server.terminate();
    assert!(
        server.wait_exit(Duration::from_secs(30)).is_some(),
        "the server stops"
    );

    // 2. A new, empty stage on moto, with the machine's card key.
    let stage = unique_stage();
    let card_key = std::fs::read_to_string(data_dir.join("card.key")).expect("card.key");
    let moto = moto();
    let cloud = machine
        .with("GIFTIFY_BACKEND", Some("aws"))
        .with("GIFTIFY_STAGE", Some(&stage))
        .with("GIFTIFY_CARD_KEY", Some(card_key.trim()))
        .with("GIFTIFY_JWT_SECRET", Some(TEST_JWT_SECRET))
        .with("AWS_ENDPOINT_URL", Some(&moto.endpoint))
        .with("AWS_REGION", Some("us-east-1"))
        .with("AWS_ACCESS_KEY_ID", Some("testing"))
        .with("AWS_SECRET_ACCESS_KEY", Some("testing"))
        .with("AWS_MAX_ATTEMPTS", Some("1"))
        .with(
            "GIFTIFY_DATA_DIR",
            Some(&dir.path().join("stage").display().to_string()),
        );
    std::fs::create_dir_all(dir.path().join("stage")).expect("stage dir");
    let bootstrap = cloud.try_run(&["aws", "bootstrap", "--empty"]);
    assert!(
        bootstrap.success,
        "bootstrap: {}{}",
        bootstrap.stdout, bootstrap.stderr
    );

    // A stage with another card key is refused before anything is copied.
    let wrong = cloud
        .with("GIFTIFY_CARD_KEY", Some(giftify_tests::moto::TEST_CARD_KEY))
        .try_run(&[
            "migrate",
            "--from-data-dir",
            &data_dir.display().to_string(),
            "--to",
            "aws",
        ]);
    assert!(
        !wrong.success,
        "a stage with another card key must be refused"
    );
    assert!(wrong.stderr.contains("card key"), "{}", wrong.stderr);

    // 3. The move, killed in the middle.
    let from = data_dir.display().to_string();
    let migrate = ["migrate", "--from-data-dir", from.as_str(), "--to", "aws"];
    let mut first = cloud.spawn("migrate", &migrate);
    let deadline = Instant::now() + Duration::from_secs(60);
    let killed_at = loop {
        if let Some(progress) = progress_part(&data_dir, &stage) {
            let part = progress["part"].as_str().unwrap_or("done").to_string();
            if part != "users" {
                first.kill();
                break part;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the move made no progress:\n{}",
            first.log()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert_ne!(
        killed_at, "done",
        "the move finished before it could be killed"
    );
    let interrupted = progress_part(&data_dir, &stage).expect("progress");
    assert_eq!(interrupted["verified"], false, "{interrupted}");

    // 4. Run again: it resumes and verifies.
    let resuming = Instant::now();
    let resumed = cloud.try_run(&migrate);
    let resumed_in = resuming.elapsed();
    assert!(
        resumed.success,
        "resumed move: {}{}",
        resumed.stdout, resumed.stderr
    );
    assert!(resumed.stdout.contains("verified"), "{}", resumed.stdout);
    let progress = progress_part(&data_dir, &stage).expect("progress");
    assert_eq!(progress["verified"], true);
    let imported = |field: &str| -> u64 {
        progress["imported"]
            .as_object()
            .expect("imported")
            .values()
            .map(|i| i[field].as_u64().unwrap_or(0))
            .sum()
    };
    // A record written before the kill whose page was not saved yet is found there on resume.
    let (copied, present) = (imported("copied"), imported("present"));
    let counted: u64 = progress["source"]["records"]
        .as_object()
        .expect("records")
        .values()
        .map(|n| n.as_u64().unwrap_or(0))
        .sum();
    assert_eq!(
        copied + present,
        counted,
        "every record accounted for once: {progress}"
    );

    // 5. A third run changes nothing.
    let checking = Instant::now();
    let again = cloud.try_run(&migrate);
    let again_in = checking.elapsed();
    assert!(again.success, "{}{}", again.stdout, again.stderr);
    assert_eq!(
        progress_part(&data_dir, &stage).expect("progress"),
        progress
    );

    // 6. The stage answers what the machine answered.
    let mut stage_server = cloud.spawn("stage-server", &["serve"]);
    let stage_http = Http::new(&cloud.base_url(), Duration::from_secs(10));
    stage_http
        .wait_until_healthy(&mut stage_server, Duration::from_secs(30))
        .await;
    let stage_api = HttpApi {
        http: stage_http.clone(),
        admin_token: load::admin_token(&stage_http).await,
    };
    let mut moved = Vec::new();
    for user in &users {
        let token = sign_in(&stage_http, &user.email).await;
        let user = TestUser {
            token,
            ..user.clone()
        };
        assert_eq!(
            account_view(&stage_api, &user).await,
            before[&user.email],
            "{} reads differently on the stage",
            user.email
        );
        moved.push(user);
    }
    assert_eq!(stock_by_variant(&stage_api).await, stock_before);
    assert_conserved(&stage_api, &moved, &initial_stock).await;
    let owner = moved
        .iter()
        .find(|u| u.email == owner.email)
        .expect("owner");
    assert_eq!(
        reveal(&stage_http, &owner.token, &order, &card).await,
        number
    );
    stage_server.terminate();
    println!(
        "moved a load run of {requests} requests ({counted} records) to a stage, killed in \
         {killed_at} ({present} records found there on resume; the resumed run took {:.1} s, \
         a run after it {:.1} s), in {:.1} s",
        resumed_in.as_secs_f64(),
        again_in.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}

/// Sets `verified` back to false in a progress file: the state a run leaves when it is killed
/// after its last page and before its verification ends.
fn unverify(progress: &giftify_infra::migration::ProgressFile) {
    let path = progress.path();
    let mut saved: Value =
        serde_json::from_slice(&std::fs::read(path).expect("progress")).expect("progress JSON");
    saved["verified"] = json!(false);
    std::fs::write(path, serde_json::to_vec(&saved).expect("JSON")).expect("write progress");
}

/// What verification catches, in process on the real stores: an item lost on the stage sends
/// the next run through every part again, which writes it back; a machine that changed since
/// the copy began is refused, naming the part.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verification_restores_what_the_stage_lost_and_refuses_a_machine_that_changed() {
    use giftify_infra::EmbeddedStack;
    use giftify_infra::migration::ProgressFile;
    use giftify_infra::stack::Opening;
    use giftify_shared::SystemClock;
    use giftify_shared::migration::{MigrationTarget, Part};
    use giftify_shared::usecases::{Registration, migrate};
    use giftify_shared::user::Email;
    use giftify_tests::moto::{AwsTestStack, TEST_CARD_KEY};

    let dir = tempfile::tempdir().expect("temp dir");
    let config = giftify_infra::Config {
        data_dir: dir.path().join("data"),
        card_key: Some(TEST_CARD_KEY.to_string().into()),
        user_limits: giftify_shared::rate_limits::ActionLimits::OFF,
        ..giftify_infra::Config::default()
    };
    let machine = EmbeddedStack::open(config, Opening::MayInitialise)
        .await
        .expect("the machine");
    let user = machine
        .giftify
        .register(Registration {
            email: Email::parse("mover@example.in").expect("email"),
            typed_email: String::new(),
            password_hash: "not-a-real-hash".into(),
            first_name: "Mo".into(),
            last_name: "Ver".into(),
            phone_number: None,
        })
        .await
        .expect("register");
    for amount in [10_000, 25_000] {
        machine
            .giftify
            .top_up(&user.id, amount, None)
            .await
            .expect("top up");
    }
    let source = machine.store.as_ref();

    // A stage that loses a ledger entry after the copy.
    let stage = AwsTestStack::start(3, 30).await;
    let target = &stage.runtime.aws.store;
    let progress = ProgressFile::of(dir.path(), Some(&stage.stage));
    let done = migrate(source, target, &progress, &SystemClock, |_| {})
        .await
        .expect("the first copy");
    assert!(done.verified);
    let tables = giftify_infra::aws::tables::TableNames::for_stage(Some(&stage.stage));
    let ledger = target
        .client()
        .scan()
        .table_name(&tables.wallet_transactions)
        .send()
        .await
        .expect("scan")
        .items
        .unwrap_or_default();
    assert_eq!(ledger.len(), 2);
    let lost = &ledger[0];
    target
        .client()
        .delete_item()
        .table_name(&tables.wallet_transactions)
        .key("userId", lost["userId"].clone())
        .key("transactionId", lost["transactionId"].clone())
        .send()
        .await
        .expect("delete");
    unverify(&progress);
    let refused = migrate(source, target, &progress, &SystemClock, |_| {})
        .await
        .expect_err("a stage short of an entry is not done");
    assert!(
        refused
            .to_string()
            .contains("ledger: 2 in the source, 1 in the target"),
        "{refused}"
    );
    let again = migrate(source, target, &progress, &SystemClock, |_| {})
        .await
        .expect("the next run writes the entry back");
    assert!(again.verified);
    assert_eq!(
        target
            .records(Part::Ledger, chrono::Utc::now())
            .await
            .expect("ledger")
            .len(),
        2
    );

    // A machine that changes between a crash and the resume.
    let second = AwsTestStack::start(3, 30).await;
    let progress = ProgressFile::of(dir.path(), Some(&second.stage));
    migrate(
        source,
        &second.runtime.aws.store,
        &progress,
        &SystemClock,
        |_| {},
    )
    .await
    .expect("the copy");
    machine
        .giftify
        .top_up(&user.id, 5_000, None)
        .await
        .expect("a top-up on the machine meanwhile");
    unverify(&progress);
    let refused = migrate(
        source,
        &second.runtime.aws.store,
        &progress,
        &SystemClock,
        |_| {},
    )
    .await
    .expect_err("a machine that changed is refused");
    let message = refused.to_string();
    assert!(
        message.contains("the machine changed") && message.contains("ledger"),
        "{message}"
    );

    // A progress file is never taken for the copy into other tables.
    let elsewhere = ProgressFile::of(dir.path(), Some(&stage.stage));
    let refused = migrate(
        source,
        &second.runtime.aws.store,
        &elsewhere,
        &SystemClock,
        |_| {},
    )
    .await
    .expect_err("a progress file of other tables is refused");
    assert!(refused.to_string().contains("other tables"), "{refused}");

    // A stage that holds data already is refused before anything is written.
    let used = ProgressFile::of(dir.path(), Some("used"));
    let refused = migrate(source, target, &used, &SystemClock, |_| {})
        .await
        .expect_err("a stage in use is refused");
    assert!(
        refused.to_string().contains("already holds data"),
        "{refused}"
    );
    assert!(
        !used.path().exists(),
        "nothing is started on a refused stage"
    );
}
