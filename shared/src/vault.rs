//! Gift cards and the vault that seals their secrets.
//!
//! The number and PIN come from the OS CSPRNG and are stored only AES-256-GCM encrypted (the
//! card id is the associated data, so a ciphertext cannot be moved to another card). A keyed
//! HMAC-SHA256 of the number is the lookup key, so the database never holds a plaintext number
//! or an unkeyed hash of one (16 digits are too few to resist a dictionary).

use crate::ids::{GiftCardId, OrderId, ProductId, UserId, VariantId};
use crate::{CardRefusal, Error, Paise, Result};
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{DateTime, NaiveDate, Utc};
use hmac::{Hmac, Mac};
use rand::{Rng, RngCore, rngs::OsRng};
use secrecy::{ExposeSecret, SecretBox, SecretString};
use sha2::Sha256;
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum GiftCardStatus {
    Active,
    Redeemed,
    Expired,
    Cancelled,
}

impl GiftCardStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            GiftCardStatus::Active => "ACTIVE",
            GiftCardStatus::Redeemed => "REDEEMED",
            GiftCardStatus::Expired => "EXPIRED",
            GiftCardStatus::Cancelled => "CANCELLED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ACTIVE" => Some(GiftCardStatus::Active),
            "REDEEMED" => Some(GiftCardStatus::Redeemed),
            "EXPIRED" => Some(GiftCardStatus::Expired),
            "CANCELLED" => Some(GiftCardStatus::Cancelled),
            _ => None,
        }
    }
}

/// An issued gift card as stored: its secrets only in sealed form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GiftCard {
    pub id: GiftCardId,
    pub order_id: OrderId,
    pub user_id: UserId,
    pub product_id: ProductId,
    pub variant_id: VariantId,
    pub product_name: String,
    pub variant_name: String,
    pub denomination: i64,
    pub sealed: SealedCard,
    pub expiry_date: NaiveDate,
    pub status: GiftCardStatus,
    pub purchase_price: Paise,
    pub issued_at: DateTime<Utc>,
    /// When and by whom a Giftify card was redeemed into a wallet.
    pub redeemed_at: Option<DateTime<Utc>>,
    pub redeemed_by: Option<UserId>,
    /// When its owner first saw the number and PIN; a revealed card cannot be returned.
    pub revealed_at: Option<DateTime<Utc>>,
    /// When its owner returned it (it is CANCELLED).
    pub returned_at: Option<DateTime<Utc>>,
    /// When its event (redeemed or returned) was published; until then the reconciler owes it.
    pub notified_at: Option<DateTime<Utc>>,
}

impl GiftCard {
    /// What the API shows in place of the number: `****-****-****-3456`.
    pub fn masked_number(&self) -> String {
        format!("****-****-****-{}", self.sealed.last4)
    }

    /// Whether the card was redeemed or returned and its event is not published yet.
    pub fn owes_event(&self) -> bool {
        self.notified_at.is_none()
            && matches!(
                self.status,
                GiftCardStatus::Redeemed | GiftCardStatus::Cancelled
            )
    }

    /// The face value: the denomination in rupees, in paise.
    pub fn face_value(&self) -> Option<Paise> {
        self.denomination.checked_mul(100).map(Paise::new)
    }

    /// Whether the card may be redeemed into a wallet on `today`: a Giftify card (the number
    /// is in Giftify's range), still ACTIVE and not past its expiry date.
    /// # Errors
    /// [`Error::Card`] with the reason.
    pub fn check_redeemable(&self, number: &str, today: NaiveDate) -> Result<()> {
        if !is_giftify_number(&normal_number(number)) {
            return Err(Error::Card(CardRefusal::NotRedeemable));
        }
        match self.status {
            GiftCardStatus::Redeemed => Err(Error::Card(CardRefusal::Redeemed)),
            GiftCardStatus::Expired => Err(Error::Card(CardRefusal::Expired)),
            GiftCardStatus::Cancelled => Err(Error::Card(CardRefusal::Cancelled)),
            GiftCardStatus::Active if self.expiry_date < today => {
                Err(Error::Card(CardRefusal::Expired))
            }
            GiftCardStatus::Active => Ok(()),
        }
    }

    /// The card after this redemption, ACTIVE → REDEEMED. Both backends commit only this.
    /// # Errors
    /// [`Error::Card`] when it is no longer ACTIVE (a concurrent redemption won).
    pub fn redeemed_by_user(&self, user: &UserId, at: DateTime<Utc>) -> Result<GiftCard> {
        if let Some(refusal) = self.status_refusal() {
            return Err(Error::Card(refusal));
        }
        let mut card = self.clone();
        card.status = GiftCardStatus::Redeemed;
        card.redeemed_at = Some(at);
        card.redeemed_by = Some(user.clone());
        Ok(card)
    }
}

/// `cards` in the order of `ids` (a batch read answers in any order); a card whose id is not
/// listed goes last.
pub fn in_id_order<I: AsRef<str>>(mut cards: Vec<GiftCard>, ids: &[I]) -> Vec<GiftCard> {
    let place: std::collections::HashMap<&str, usize> = ids
        .iter()
        .enumerate()
        .map(|(at, id)| (id.as_ref(), at))
        .collect();
    cards.sort_by_key(|card| place.get(card.id.as_str()).copied().unwrap_or(usize::MAX));
    cards
}

impl GiftCard {
    /// The refusal of the card's current status for a use that needs it ACTIVE.
    fn status_refusal(&self) -> Option<CardRefusal> {
        match self.status {
            GiftCardStatus::Active => None,
            GiftCardStatus::Redeemed => Some(CardRefusal::Redeemed),
            GiftCardStatus::Expired => Some(CardRefusal::Expired),
            GiftCardStatus::Cancelled => Some(CardRefusal::Cancelled),
        }
    }

    /// Whether its owner may return the card at `now`: ACTIVE, never revealed, and within
    /// `window` of its issue.
    /// # Errors
    /// [`Error::Card`] with the reason.
    pub fn check_returnable(&self, now: DateTime<Utc>, window: chrono::Duration) -> Result<()> {
        if let Some(refusal) = self.status_refusal() {
            return Err(Error::Card(refusal));
        }
        if self.revealed_at.is_some() {
            return Err(Error::Card(CardRefusal::Revealed));
        }
        if now > self.issued_at + window {
            return Err(Error::Card(CardRefusal::ReturnWindowClosed));
        }
        Ok(())
    }

    /// The card after its return, ACTIVE → CANCELLED. Both backends commit only this.
    /// # Errors
    /// [`Error::Card`] when it is no longer ACTIVE or was revealed (a racing reveal won).
    pub fn returned(&self, at: DateTime<Utc>) -> Result<GiftCard> {
        if let Some(refusal) = self.status_refusal() {
            return Err(Error::Card(refusal));
        }
        if self.revealed_at.is_some() {
            return Err(Error::Card(CardRefusal::Revealed));
        }
        let mut card = self.clone();
        card.status = GiftCardStatus::Cancelled;
        card.returned_at = Some(at);
        Ok(card)
    }
}

/// The stored form of a card's secrets.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedCard {
    /// base64(nonce ‖ AES-256-GCM ciphertext) of the number.
    pub number_ciphertext: String,
    /// base64(nonce ‖ AES-256-GCM ciphertext) of the PIN.
    pub pin_ciphertext: String,
    /// hex HMAC-SHA256 of the number under the lookup key.
    pub lookup_key: String,
    /// The last four digits, shown masked.
    pub last4: String,
}

impl fmt::Debug for SealedCard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedCard")
            .field("last4", &self.last4)
            .finish_non_exhaustive()
    }
}

/// Giftify's own card numbers are `GFY` and 16 digits; no brand code may take that form, so an
/// imported code can never collide with a card Giftify minted (which no code table holds).
pub const GIFTIFY_NUMBER_PREFIX: &str = "GFY";

/// The normal form of a card number: upper case, without spaces or dashes. Lookup hashes are
/// taken over it, so `abcd-1234` and `ABCD 1234` are one number.
pub fn normal_number(raw: &str) -> String {
    raw.chars()
        .filter(|c| !matches!(c, ' ' | '-'))
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// Whether a normal-form number is in Giftify's own range.
pub fn is_giftify_number(normal: &str) -> bool {
    normal
        .strip_prefix(GIFTIFY_NUMBER_PREFIX)
        .is_some_and(|digits| digits.len() == 16 && digits.bytes().all(|b| b.is_ascii_digit()))
}

/// A card's plaintext number and PIN, only for the owner's audited reveal.
pub struct RevealedCard {
    pub number: SecretString,
    pub pin: SecretString,
}

impl fmt::Debug for RevealedCard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RevealedCard { .. }")
    }
}

/// The 32-byte master key from which the encryption and lookup keys are derived.
pub struct CardKey(SecretBox<[u8; 32]>);

impl CardKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        CardKey(SecretBox::new(Box::new(bytes)))
    }

    /// Parses the base64 form used in configuration.
    pub fn from_base64(encoded: &str) -> Result<Self> {
        let bytes = B64
            .decode(encoded.trim())
            .map_err(|_| Error::internal("card key is not valid base64"))?;
        let array: [u8; 32] = bytes
            .try_into()
            .map_err(|_| Error::internal("card key must be 32 bytes"))?;
        Ok(Self::from_bytes(array))
    }

    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        OsRng.fill_bytes(&mut bytes);
        Self::from_bytes(bytes)
    }

    pub fn to_base64(&self) -> String {
        B64.encode(self.0.expose_secret())
    }

    /// The key's check value (see [`crate::keys`]).
    pub fn check_value(&self) -> String {
        crate::keys::check_value(self.0.expose_secret())
    }
}

/// Seals and opens gift card secrets. Built once per process from the master key.
pub struct CardVault {
    cipher: Aes256Gcm,
    lookup: Hmac<Sha256>,
}

impl fmt::Debug for CardVault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CardVault { .. }")
    }
}

/// Derives a purpose-bound subkey: HMAC-SHA256(master, label).
fn derive(master: &CardKey, label: &str) -> [u8; 32] {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(master.0.expose_secret()).expect("any key length");
    mac.update(label.as_bytes());
    mac.finalize().into_bytes().into()
}

impl CardVault {
    pub fn new(master: &CardKey) -> Self {
        let enc = derive(master, "giftify/card-encryption/v1");
        let look = derive(master, "giftify/card-lookup/v1");
        CardVault {
            cipher: Aes256Gcm::new_from_slice(&enc).expect("32-byte key"),
            lookup: <Hmac<Sha256> as Mac>::new_from_slice(&look).expect("any key length"),
        }
    }

    /// A fresh Giftify card number (`GFY-1234-5678-9012-3456`, see
    /// [`GIFTIFY_NUMBER_PREFIX`]) and 6-digit PIN from the OS CSPRNG.
    pub fn generate_secrets() -> (SecretString, SecretString) {
        let mut rng = OsRng;
        let digits: String = (0..16)
            .map(|_| char::from(b'0' + rng.gen_range(0..10u8)))
            .collect();
        let number = format!(
            "{}-{}-{}-{}-{}",
            GIFTIFY_NUMBER_PREFIX,
            &digits[0..4],
            &digits[4..8],
            &digits[8..12],
            &digits[12..16]
        );
        let pin: String = (0..6)
            .map(|_| char::from(b'0' + rng.gen_range(0..10u8)))
            .collect();
        (SecretString::from(number), SecretString::from(pin))
    }

    /// The lookup key of a card number, taken over its normal form
    /// ([`normal_number`]), so a number typed with or without dashes finds its card.
    pub fn lookup_key(&self, number: &str) -> String {
        let mut mac = self.lookup.clone();
        mac.update(normal_number(number).as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// A keyed digest of secret-bearing bytes (an import's rows), to compare two of them
    /// without storing either: domain-separated from the lookup keys.
    pub fn keyed_digest(&self, data: &[u8]) -> String {
        let mut mac = self.lookup.clone();
        mac.update(b"giftify/digest/v1\0");
        mac.update(data);
        hex::encode(mac.finalize().into_bytes())
    }

    /// Seals a secret that must be read back (a webhook signing secret), bound to `owner`'s
    /// id: sealed for one owner, it does not open for another.
    pub fn seal_text(&self, owner: &str, plaintext: &str) -> Result<String> {
        self.encrypt(owner, "secret", plaintext)
    }

    /// Opens what [`CardVault::seal_text`] sealed for `owner`.
    pub fn open_text(&self, owner: &str, sealed: &str) -> Result<SecretString> {
        self.decrypt(owner, "secret", sealed)
    }

    fn encrypt(
        &self,
        card: &(impl fmt::Display + ?Sized),
        field: &str,
        plaintext: &str,
    ) -> Result<String> {
        let mut nonce = [0u8; 12];
        OsRng.fill_bytes(&mut nonce);
        let aad = format!("{card}/{field}");
        let ciphertext = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| Error::internal("card encryption failed"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ciphertext);
        Ok(B64.encode(out))
    }

    fn decrypt(
        &self,
        card: &(impl fmt::Display + ?Sized),
        field: &str,
        sealed: &str,
    ) -> Result<SecretString> {
        let raw = B64
            .decode(sealed)
            .map_err(|_| Error::internal("sealed card is not base64"))?;
        if raw.len() < 12 {
            return Err(Error::internal("sealed card is truncated"));
        }
        let (nonce, ciphertext) = raw.split_at(12);
        let aad = format!("{card}/{field}");
        let plaintext = self
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| Error::internal("card decryption failed: wrong key or tampered data"))?;
        String::from_utf8(plaintext)
            .map(SecretString::from)
            .map_err(|_| Error::internal("sealed card is not UTF-8"))
    }

    /// Generates and seals the secrets of a new Giftify card.
    pub fn issue(&self, card: &GiftCardId) -> Result<SealedCard> {
        let (number, pin) = Self::generate_secrets();
        self.seal(card, number.expose_secret(), pin.expose_secret())
    }

    /// Seals a card's number and PIN (empty when the brand gave none) under the card's id.
    pub fn seal(&self, card: &GiftCardId, number: &str, pin: &str) -> Result<SealedCard> {
        let normal = normal_number(number);
        if normal.len() < 4 {
            return Err(Error::internal(
                "a card number has at least four characters",
            ));
        }
        Ok(SealedCard {
            number_ciphertext: self.encrypt(card, "number", number)?,
            pin_ciphertext: self.encrypt(card, "pin", pin)?,
            lookup_key: self.lookup_key(number),
            last4: normal[normal.len() - 4..].to_string(),
        })
    }

    pub fn open(&self, card: &GiftCardId, sealed: &SealedCard) -> Result<RevealedCard> {
        Ok(RevealedCard {
            number: self.decrypt(card, "number", &sealed.number_ciphertext)?,
            pin: self.decrypt(card, "pin", &sealed.pin_ciphertext)?,
        })
    }
}

/// An audit record of one reveal of a card's secrets.
#[derive(Clone, Debug)]
pub struct RevealAudit {
    pub gift_card_id: GiftCardId,
    pub order_id: OrderId,
    pub user_id: UserId,
    pub revealed_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_cards_open_only_with_the_same_key_and_card_id() {
        let key = CardKey::generate();
        let vault = CardVault::new(&key);
        let id = GiftCardId::generate();
        let sealed = vault.issue(&id).unwrap();
        let opened = vault.open(&id, &sealed).unwrap();
        let number = opened.number.expose_secret().to_string();
        assert_eq!(number.len(), 23);
        assert!(is_giftify_number(&normal_number(&number)));
        assert!(number.ends_with(&sealed.last4));
        assert_eq!(opened.pin.expose_secret().len(), 6);
        assert_eq!(vault.lookup_key(&number), sealed.lookup_key);
        assert!(!sealed.number_ciphertext.contains(&number.replace('-', "")));
        assert_eq!(
            vault.lookup_key(&number.replace('-', " ")),
            sealed.lookup_key
        );

        assert!(
            vault.open(&GiftCardId::generate(), &sealed).is_err(),
            "bound to its card id"
        );
        let other = CardVault::new(&CardKey::generate());
        assert!(other.open(&id, &sealed).is_err(), "bound to its key");
        let reloaded = CardVault::new(&CardKey::from_base64(&key.to_base64()).unwrap());
        assert!(
            reloaded.open(&id, &sealed).is_ok(),
            "the base64 form round-trips"
        );
    }

    #[test]
    fn only_an_active_unexpired_giftify_card_is_redeemable() {
        let id = GiftCardId::generate();
        let today = NaiveDate::from_ymd_opt(2026, 12, 6).unwrap();
        let mut card = GiftCard {
            sealed: CardVault::new(&CardKey::generate()).issue(&id).unwrap(),
            id,
            order_id: OrderId::generate(),
            user_id: UserId::generate(),
            product_id: ProductId::generate(),
            variant_id: VariantId::generate(),
            product_name: "Giftify".into(),
            variant_name: "Giftify 500".into(),
            denomination: 500,
            expiry_date: today,
            status: GiftCardStatus::Active,
            purchase_price: Paise::new(50_000),
            issued_at: Utc::now(),
            redeemed_at: None,
            redeemed_by: None,
            revealed_at: None,
            returned_at: None,
            notified_at: None,
        };
        let ours = "GFY-1234-5678-9012-3456";
        assert!(
            card.check_redeemable(ours, today).is_ok(),
            "good through its date"
        );
        assert_eq!(card.face_value(), Some(Paise::new(50_000)));
        let refusal = |card: &GiftCard, number: &str, day: NaiveDate| match card
            .check_redeemable(number, day)
        {
            Err(Error::Card(reason)) => Some(reason),
            _ => None,
        };
        assert_eq!(
            refusal(&card, "AMZN12345678", today),
            Some(CardRefusal::NotRedeemable)
        );
        assert_eq!(
            refusal(&card, ours, today.succ_opt().unwrap()),
            Some(CardRefusal::Expired)
        );
        for (status, reason) in [
            (GiftCardStatus::Redeemed, CardRefusal::Redeemed),
            (GiftCardStatus::Expired, CardRefusal::Expired),
            (GiftCardStatus::Cancelled, CardRefusal::Cancelled),
        ] {
            card.status = status;
            assert_eq!(refusal(&card, ours, today), Some(reason));
        }
    }

    #[test]
    fn a_card_is_returnable_while_active_unrevealed_and_within_its_window() {
        let id = GiftCardId::generate();
        let issued = Utc::now();
        let mut card = GiftCard {
            sealed: CardVault::new(&CardKey::generate()).issue(&id).unwrap(),
            id,
            order_id: OrderId::generate(),
            user_id: UserId::generate(),
            product_id: ProductId::generate(),
            variant_id: VariantId::generate(),
            product_name: "Amazon".into(),
            variant_name: "Amazon 500".into(),
            denomination: 500,
            expiry_date: issued.date_naive(),
            status: GiftCardStatus::Active,
            purchase_price: Paise::new(48_500),
            issued_at: issued,
            redeemed_at: None,
            redeemed_by: None,
            revealed_at: None,
            returned_at: None,
            notified_at: None,
        };
        let day = chrono::Duration::hours(24);
        let refusal = |card: &GiftCard, at| match card.check_returnable(at, day) {
            Err(Error::Card(reason)) => Some(reason),
            _ => None,
        };
        assert_eq!(
            refusal(&card, issued + day),
            None,
            "the last instant of the window"
        );
        assert_eq!(
            refusal(&card, issued + day + chrono::Duration::milliseconds(1)),
            Some(CardRefusal::ReturnWindowClosed)
        );
        assert_eq!(
            card.returned(Utc::now()).unwrap().status,
            GiftCardStatus::Cancelled
        );
        card.revealed_at = Some(issued);
        assert_eq!(refusal(&card, issued), Some(CardRefusal::Revealed));
        assert!(card.returned(Utc::now()).is_err());
        card.revealed_at = None;
        card.status = GiftCardStatus::Redeemed;
        assert_eq!(refusal(&card, issued), Some(CardRefusal::Redeemed));
    }

    #[test]
    fn debug_output_never_shows_secrets() {
        let vault = CardVault::new(&CardKey::generate());
        let id = GiftCardId::generate();
        let sealed = vault.issue(&id).unwrap();
        let opened = vault.open(&id, &sealed).unwrap();
        let shown = format!("{sealed:?} {opened:?} {vault:?}");
        assert!(!shown.contains(opened.number.expose_secret()));
        assert!(!shown.contains(&sealed.number_ciphertext));
    }
}
