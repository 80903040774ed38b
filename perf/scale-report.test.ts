import test from 'ava';
import { type ScaleDetails, type ScaleSummary, targetsOf } from './scale-report.ts';

test("targets: the decision as drivers see it and the controller's own, each against 5 ms", (t) => {
  const summary = {
    decision_p99_ms: 65.9,
    report_rate_per_s: 1200,
    controller_rss_mb: 262,
    reserved_over_used: 1.14,
    node_seconds_vs_peak: 0.2,
  } as ScaleSummary;
  const details = { controller_cpu_cores: 0.5, controller_decision_p99_ms: 3.6 } as ScaleDetails;
  const targets = targetsOf(summary, details);
  t.false(targets.decision_p99_under_5ms);
  t.true(targets.controller_decision_p99_under_5ms);
  t.true(targets.reports_1000_per_s_with_cpu_to_spare);
  t.false(targetsOf(summary, { ...details, controller_cpu_cores: 0.9 }).reports_1000_per_s_with_cpu_to_spare);
  const { controller_decision_p99_ms: _, ...unlogged } = details;
  t.false(targetsOf(summary, unlogged as ScaleDetails).controller_decision_p99_under_5ms, 'no log: not met');
});
