//! Deadlines, and the join and leave commands that start them.

use super::*;

impl<R: Rng> Swim<R> {
    /// Runs every timer due at `now`, earliest first; ties go to the parts
    /// in a fixed order (detector, membership, dissemination, life cycle).
    pub(super) fn on_timeout(&mut self, now: Instant) {
        if self.lifecycle.phase() == Phase::Left {
            return;
        }
        self.ensure_started(now);
        loop {
            let Some((part, _)) = self
                .part_deadlines()
                .iter()
                .enumerate()
                .filter_map(|(i, d)| d.filter(|&at| at <= now).map(|at| (i, at)))
                .min_by_key(|&(i, at)| (at, i))
            else {
                return;
            };
            match part {
                0 => self.on_detector_timer(now),
                1 => {
                    if let Some(t) = self.membership.pop_due(now) {
                        let (d, o, r) = (&mut self.dissemination, &mut self.outbox, &mut self.rng);
                        let doubt = self.detector.datagrams_doubtful();
                        if let Some(check) = self.membership.on_timer(now, t, doubt, d, o, r) {
                            self.check_over_stream(now, check);
                        }
                    }
                }
                2 => {
                    if let Some(dissemination::Timer::Gossip) = self.dissemination.pop_due(now) {
                        self.dissemination.on_gossip_tick(now, &self.membership.table, &mut self.outbox, &mut self.rng);
                    }
                }
                3 => self.on_lifecycle_timer(now),
                4 => self.on_stream_expired(now),
                5 => self.on_query_timer(now),
                _ => self.on_claim_timer(now),
            }
            if self.lifecycle.phase() == Phase::Left {
                return;
            }
        }
    }

    pub(super) fn on_detector_timer(&mut self, now: Instant) {
        let Some(timer) = self.detector.pop_due(now) else { return };
        match timer {
            detector::Timer::Period => {
                // Settle the last period: each failed probe makes its
                // target suspect (or confirms a suspicion of it).
                for id in self.detector.finish_period() {
                    let (d, o, r) = (&mut self.dissemination, &mut self.outbox, &mut self.rng);
                    self.membership.suspect_from_probe(now, id, d, o, r);
                }
                let (me, table) = self.membership.name_and_table();
                self.coords.on_period(table);
                let (c, o, r) = (&mut self.coords, &mut self.outbox, &mut self.rng);
                self.detector.start_period(now, &self.config, me, table, c, o, r);
            }
            detector::Timer::ProbeTimeout(seq) => {
                let table = &mut self.membership.table;
                self.detector.on_probe_timeout(seq, &self.config, table, &mut self.outbox, &mut self.rng);
                if self.config.fallback_ping {
                    self.fallback_ping(now, seq);
                }
            }
            detector::Timer::Relay(seq) => self.detector.on_relay_timeout(seq, &mut self.outbox),
        }
    }

    pub(super) fn on_lifecycle_timer(&mut self, now: Instant) {
        let Some(timer) = self.lifecycle.pop_due(now) else { return };
        let sync = Sync {
            membership: &mut self.membership,
            streams: &mut self.streams,
            user: &self.user,
            query_clock: self.queries.clock.clock(),
            outbox: &mut self.outbox,
        };
        match timer {
            lifecycle::Timer::PushPull => {
                let deaf = self.detector.answered_by_stream_only();
                self.lifecycle.on_push_pull_tick(now, deaf, sync, &mut self.rng);
            }
            lifecycle::Timer::JoinRetry => self.lifecycle.on_join_retry(now, sync, &mut self.rng),
            lifecycle::Timer::Reconnect => self.lifecycle.on_reconnect_tick(now, sync, &mut self.rng),
            lifecycle::Timer::LeaveDeadline => self.complete_leave(),
        }
    }

    pub(super) fn on_join(&mut self, now: Instant, seeds: &[SocketAddr]) -> Result<(), Error> {
        let sync = Sync {
            membership: &mut self.membership,
            streams: &mut self.streams,
            user: &self.user,
            query_clock: self.queries.clock.clock(),
            outbox: &mut self.outbox,
        };
        self.lifecycle.join(now, seeds, sync, &mut self.dissemination, &mut self.rng)?;
        self.ensure_started(now);
        Ok(())
    }

    pub(super) fn on_leave(&mut self, now: Instant) -> Result<(), Error> {
        if self.lifecycle.phase() != Phase::Running {
            return Err(Error::Leaving);
        }
        self.ensure_started(now);
        let (m, d, o, r) = (&mut self.membership, &mut self.dissemination, &mut self.outbox, &mut self.rng);
        self.lifecycle.leave(now, m, d, o, r)
    }
}
