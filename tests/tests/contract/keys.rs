//! `KeyChecks`: the check values of the keys the data was sealed and signed with.

use crate::support::{fulfil, funded_user, now, place, stocked};
use anyhow::Result;
use giftify_shared::keys::KeyName;
use giftify_shared::ports::Ports;

pub async fn a_key_check_value_is_recorded_once_and_the_first_one_stays(
    ports: &Ports,
) -> Result<()> {
    // A backend opened through its composition root may have recorded its keys already.
    let before = ports.keys.recorded_check(KeyName::Jwt).await?;
    let first = ports
        .keys
        .record_check(KeyName::Jwt, "first-value", now())
        .await?;
    assert_eq!(first, before.unwrap_or_else(|| "first-value".into()));
    let second = ports
        .keys
        .record_check(KeyName::Jwt, "second-value", now())
        .await?;
    assert_eq!(
        second, first,
        "a later start cannot replace the recorded value"
    );
    assert_eq!(ports.keys.recorded_check(KeyName::Jwt).await?, Some(first));
    Ok(())
}

pub async fn sealed_cards_counts_every_issued_card(ports: &Ports) -> Result<()> {
    assert_eq!(ports.keys.sealed_cards().await?, 0);
    let user = funded_user(ports, 1_000_000).await?;
    let entries = stocked(ports, &[5]).await?;
    let order = place(ports, &user.id, &[(&entries[0], 3)]).await?;
    fulfil(ports, &order, &[2]).await?;
    assert_eq!(ports.keys.sealed_cards().await?, 2);
    Ok(())
}
