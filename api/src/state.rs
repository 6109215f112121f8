//! The state every handler shares, built once per process.

use crate::auth::{Passwords, TokenService};
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::response::Rendered;
use giftify_shared::Giftify;
use giftify_shared::catalogue::ProductWithVariants;
use secrecy::SecretString;
use std::sync::{Arc, Mutex, PoisonError};

/// What every handler shares: the core, the token keys, the password hasher and the
/// metrics. Cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct AppState {
    inner: Arc<StateInner>,
}

struct StateInner {
    giftify: Giftify,
    tokens: TokenService,
    passwords: Passwords,
    metrics: Arc<Metrics>,
    catalogue_page: Mutex<Option<CataloguePage>>,
}

/// `GET /products` rendered from one catalogue the core kept: serialised and tagged once per
/// catalogue, not once per request.
struct CataloguePage {
    catalogue: Arc<Vec<ProductWithVariants>>,
    rendered: Arc<Rendered>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("giftify", &self.inner.giftify)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// The state of one router: `jwt_secret` signs and verifies access tokens.
    pub fn new(giftify: Giftify, jwt_secret: &SecretString) -> Self {
        // Password hashing is CPU-bound: more hashes in flight than cores only adds memory.
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        AppState {
            inner: Arc::new(StateInner {
                giftify,
                tokens: TokenService::new(jwt_secret),
                passwords: Passwords::new(cores.max(2)),
                metrics: Arc::new(Metrics::default()),
                catalogue_page: Mutex::default(),
            }),
        }
    }

    /// The application core.
    pub fn giftify(&self) -> &Giftify {
        &self.inner.giftify
    }

    /// Access-token issuing and verification.
    pub fn tokens(&self) -> &TokenService {
        &self.inner.tokens
    }

    /// Password hashing and verification.
    pub fn passwords(&self) -> &Passwords {
        &self.inner.passwords
    }

    /// The catalogue page for `catalogue`: the one rendered last if it was rendered from this
    /// very catalogue (the core hands out the same `Arc` while its cache holds), else `render`'s.
    pub fn catalogue_page(
        &self,
        catalogue: &Arc<Vec<ProductWithVariants>>,
        render: impl FnOnce() -> Result<Rendered, ApiError>,
    ) -> Result<Arc<Rendered>, ApiError> {
        let lock = || {
            self.inner
                .catalogue_page
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
        };
        if let Some(page) = lock().as_ref()
            && Arc::ptr_eq(&page.catalogue, catalogue)
        {
            return Ok(page.rendered.clone());
        }
        let rendered = Arc::new(render()?);
        *lock() = Some(CataloguePage {
            catalogue: catalogue.clone(),
            rendered: rendered.clone(),
        });
        Ok(rendered)
    }

    /// The request metrics of this state's router.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.metrics
    }
}
