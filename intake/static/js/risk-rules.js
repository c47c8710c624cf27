/* The risk rule table's interpreter in the browser. The table itself is data served by the server
   (intake/calls/risk.py, rule_table(), embedded in the call form as JSON): this file knows only the
   grammar of a condition, so the level shown while the operator types is the one the server will
   save. tests/browser/test_risk_parity.py runs every row of the table through both. No inline script
   (CSP); nothing here touches the page. */
(function () {
  "use strict";

  var UNANSWERED = "unanswered";

  function has(list, value) { return list.indexOf(value) >= 0; }

  function holds(table, condition, facts) {
    if (condition.all) { return condition.all.every(function (c) { return holds(table, c, facts); }); }
    if (condition.any) { return condition.any.some(function (c) { return holds(table, c, facts); }); }
    if (condition.ref) { return holds(table, table.definitions[condition.ref], facts); }
    if (condition.answer) { return (facts.answers[condition.answer] || UNANSWERED) === condition.is; }
    if (condition.symptom) { return has(facts.symptoms, condition.symptom); }
    if (condition.substance_in) {
      return condition.substance_in.some(function (s) { return has(facts.substances, s); });
    }
    if (condition.any_symptom) { return facts.symptoms.length > 0; }
    if (condition.any_substance) { return facts.substances.length > 0; }
    throw new Error("unknown condition " + JSON.stringify(condition));
  }

  // facts: {answers: {question: "yes"|"no"|"unanswered"}, symptoms: [codes], substances: [codes]}
  function evaluate(table, facts) {
    var matched = [];
    var level = 0;
    table.rules.forEach(function (row) {
      if (holds(table, row.when, facts)) {
        matched.push(row.id);
        level = Math.max(level, table.levels.indexOf(row.level));
      }
    });
    var required = table.questions.filter(function (q) {
      return table.requirements.some(function (req) { return has(req.require, q) && holds(table, req.when, facts); });
    });
    return {
      level: table.levels[level],
      overdose_risk: holds(table, { ref: "overdose_co_use" }, facts),
      matched: matched,
      required: required,
      unanswered_required: required.filter(function (q) { return (facts.answers[q] || UNANSWERED) === UNANSWERED; })
    };
  }

  window.intakeRisk = { evaluate: evaluate, holds: holds };
})();
