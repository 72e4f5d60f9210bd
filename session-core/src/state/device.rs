//! What a session's device said when the session began (`device_info`):
//! its user agent and a coarse address, kept in a reserved field of the
//! session and shown by a devices page ([`SessionInfo::device`]).
//!
//! [`SessionInfo::device`]: crate::SessionInfo::device

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// The reserved field the device is kept in (`@`: no Rust field name).
pub(crate) const DEVICE: &str = "@device";

/// The most characters of a user agent kept.
const MAX_USER_AGENT: usize = 200;

/// A session's device as the request that created it described it: for a
/// devices page, never for a security decision (a client says what it
/// likes in `User-Agent`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DeviceInfo {
    /// The `User-Agent` header, at most 200 characters.
    pub user_agent: Option<String>,
    /// The client's address, coarsened to its network: `203.0.113.0/24`
    /// for IPv4, `2001:db8:1::/48` for IPv6 (enough to tell "home" from
    /// "abroad", not to find a household).
    pub address: Option<String>,
}

impl DeviceInfo {
    /// A device from what a request says: its user agent (cut to 200
    /// characters) and its address (coarsened).
    ///
    /// ```
    /// use session_core::DeviceInfo;
    ///
    /// let device = DeviceInfo::new(Some("Mozilla/5.0"), Some("203.0.113.77".parse().unwrap()));
    /// assert_eq!(device.address.as_deref(), Some("203.0.113.0/24"));
    /// let v6 = DeviceInfo::new(None, Some("2001:db8:1:2::7".parse().unwrap()));
    /// assert_eq!(v6.address.as_deref(), Some("2001:db8:1::/48"));
    /// ```
    pub fn new(user_agent: Option<&str>, address: Option<IpAddr>) -> DeviceInfo {
        DeviceInfo {
            user_agent: user_agent.map(|ua| ua.chars().take(MAX_USER_AGENT).collect()),
            address: address.map(coarse),
        }
    }
}

/// The network of an address: /24 for IPv4, /48 for IPv6 (an IPv4 address
/// mapped into IPv6 counts as IPv4).
fn coarse(address: IpAddr) -> String {
    match address {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            format!("{a}.{b}.{c}.0/24")
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => coarse(IpAddr::V4(v4)),
            None => {
                let s = v6.segments();
                let net = std::net::Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0);
                format!("{net}/48")
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::DeviceInfo;

    #[test]
    fn addresses_are_coarse_and_agents_short() {
        let d = DeviceInfo::new(
            Some(&"x".repeat(500)),
            Some("::ffff:198.51.100.9".parse().unwrap()),
        );
        assert_eq!(d.user_agent.unwrap().len(), 200);
        assert_eq!(d.address.as_deref(), Some("198.51.100.0/24"));
        assert_eq!(DeviceInfo::new(None, None).address, None);
    }
}
