//! The token in the cookie, bare or signed: the session itself stays in
//! the store, under the token's hash.

use crate::config::Config;
use crate::error::Result;
use crate::signing::CookieSigner;
use crate::store::Validity;
use crate::token::Token;

use super::{Arrival, Carrier};

/// Bare tokens, or with `signing_keys` tokens signed with the first key
/// and verified with any.
#[derive(Debug)]
pub(crate) struct TokenCarrier {
    signer: Option<CookieSigner>,
}

impl TokenCarrier {
    pub(crate) fn new(config: &Config) -> Result<Self> {
        Ok(TokenCarrier {
            signer: CookieSigner::new(&config.signing_keys)?,
        })
    }
}

impl Carrier for TokenCarrier {
    /// Only a well-formed token, and with `signing_keys` only one signed
    /// by one of them: anything else is no cookie, found out without a
    /// store call. Whether the token names a live session is found out on
    /// first use.
    fn read(&self, value: Option<&str>, _: Validity) -> Arrival {
        let token = value.and_then(|value| match &self.signer {
            Some(signer) => signer.verify(value),
            None => Token::parse(value),
        });
        Arrival {
            token: token.map(|t| (t, None)),
            carried: None,
        }
    }

    fn value(&self, token: &Token) -> Option<String> {
        Some(match &self.signer {
            Some(signer) => signer.sign(token),
            None => token.to_cookie_value(),
        })
    }
}
