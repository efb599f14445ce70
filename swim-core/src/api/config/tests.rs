use super::*;

#[test]
fn presets_are_valid_and_match_memberlist() {
    for c in [Config::lan(), Config::wan(), Config::local()] {
        assert_eq!(c.validate(), Ok(()));
    }
    let lan = Config::default();
    assert_eq!(lan.probe_interval, Duration::from_secs(1));
    assert_eq!(lan.probe_timeout, Duration::from_millis(500));
    assert_eq!(lan.indirect_checks, 3);
    assert_eq!(lan.suspicion_mult.get(), 4);
    assert_eq!(lan.suspicion_max_timeout_mult.get(), 6);
    assert_eq!(lan.retransmit_mult.get(), 4);
    assert_eq!(lan.gossip_interval, Duration::from_millis(200));
    assert_eq!(lan.gossip_nodes, 3);
    assert_eq!(lan.packet_budget, 1400);
    assert_eq!(Config::wan().probe_interval, Duration::from_secs(5));
    assert_eq!(Config::local().probe_timeout, Duration::from_millis(200));
}

#[test]
fn out_of_range_fields_are_refused() {
    let mut c = Config::lan();
    c.probe_timeout = c.probe_interval;
    assert_eq!(c.validate(), Err(ConfigError::ProbeTimeout));
    let mut c = Config::lan();
    c.packet_budget = 100;
    assert_eq!(c.validate(), Err(ConfigError::PacketBudget));
    let mut c = Config::lan();
    c.packet_budget = 9000;
    assert_eq!(c.validate(), Err(ConfigError::PacketBudget));
    let mut c = Config::lan();
    c.packet_budget = 600;
    assert_eq!(c.validate(), Err(ConfigError::MetaTooLongForBudget));
    c.max_meta_len = 128;
    assert_eq!(c.validate(), Err(ConfigError::UserData), "a full broadcast must fit the budget too");
    c.max_user_payload = 256;
    assert_eq!(c.validate(), Ok(()));
    let mut c = Config::lan();
    c.indirect_checks = 17;
    assert_eq!(c.validate(), Err(ConfigError::IndirectChecks));
    let mut c = Config::lan();
    c.dead_member_retention = Duration::ZERO;
    assert_eq!(c.validate(), Err(ConfigError::DeadMemberRetention));
    let mut c = Config::lan();
    c.probe_interval = Duration::ZERO;
    assert_eq!(c.validate(), Err(ConfigError::ProbeInterval));
}
