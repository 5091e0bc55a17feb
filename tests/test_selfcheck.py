"""The eligibility self-check: the real flow's rules and paths, the engine, the YAML checks."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
import yaml

from knowledge.errors import KnowledgeError
from knowledge.selfcheck.flow import (
    DEFAULT_PATH,
    InvalidAnswer,
    SelfCheck,
    StaleState,
    load_flow,
    load_selfcheck,
)

AFTER = date(2026, 11, 28)
BEFORE = date(2016, 5, 1)

# One answer per step that satisfies every condition.
GOOD = {
    "org_type": "public_inst", "public_function": "yes", "legal_person": "yes", "field": "education",
    "std_basis": "yes", "accident": "none", "credit": "good", "support": "yes", "channel": "city_joint",
}


@pytest.fixture(scope="module")
def sc(kb) -> SelfCheck:
    return load_selfcheck(kb)


def run(sc: SelfCheck, **overrides: str) -> dict:
    """Answer until done: the override for a step if given, else the good answer.
    Every override must actually be asked, so a test cannot pass by skipping it."""
    state = sc.start()
    asked = []
    while not state["done"]:
        step = state["step"]
        asked.append(step)
        state = sc.answer(state, overrides.get(step, GOOD[step]), step_id=step)
    assert set(overrides) <= set(asked), f"not asked: {set(overrides) - set(asked)}"
    return state


def verdict_of(sc: SelfCheck, kb, today: date = AFTER, **overrides: str):
    return sc.verdict(run(sc, **overrides), today, kb.meta)


# -- the real flow ------------------------------------------------------------------------


def test_real_flow_has_the_issue_steps_in_order(sc):
    assert [s.id for s in sc.flow.steps] == [
        "org_type", "public_function", "legal_person", "field", "std_basis", "accident", "credit", "support",
        "channel",
    ]
    org = sc.flow.step("org_type")
    assert [o.label for o in org.options] == [
        "行政机构", "事业单位", "行业协会", "提供公共服务的企业", "其他正式注册登记的社会组织", "个人或未注册的团体", "其他企业",
    ]
    for step in sc.flow.steps:
        assert step.help and step.clauses


def test_field_options_are_the_notice_fields_plus_other(sc, kb):
    labels = [o.label for o in sc.flow.step("field").options]
    assert labels[-1] == "其他领域"
    scope = kb.clauses["二"].text
    for label in labels[:-1]:
        assert label in scope
    assert len(labels) == 13


def test_conditions_cite_the_clauses_the_notice_puts_them_in(sc):
    clause_of = {c.id: c.clause for c in sc.flow.conditions.values()}
    assert clause_of["no_legal_person"] == "三.1"
    assert clause_of["not_registered"] == "三.1"
    for cid in ("no_std_basis", "had_accident", "bad_credit", "no_support"):
        assert clause_of[cid] == "三.2"
    assert sc.flow.cautions["field_other"].clause == "二"


# -- verdicts ---------------------------------------------------------------------------------


def test_all_good_answers_are_eligible(sc, kb):
    v = verdict_of(sc, kb)
    assert (v.status, v.title) == ("eligible", "符合申报条件")
    assert v.reasons == () and v.cautions == ()
    assert "符合申报条件" in sc.render_verdict(v)


@pytest.mark.parametrize(("overrides", "condition", "clause"), [
    ({"org_type": "individual"}, "not_registered", "三.1"),
    ({"org_type": "other_company"}, "no_public_function", "三.1"),
    ({"public_function": "no"}, "no_public_function", "三.1"),
    ({"legal_person": "no"}, "no_legal_person", "三.1"),
    ({"std_basis": "no"}, "no_std_basis", "三.2"),
    ({"accident": "some"}, "had_accident", "三.2"),
    ({"credit": "bad"}, "bad_credit", "三.2"),
    ({"support": "no"}, "no_support", "三.2"),
    ({"channel": "outside"}, "no_channel", "三.3"),
])
def test_each_disqualifying_answer_alone(sc, kb, overrides, condition, clause):
    v = verdict_of(sc, kb, **overrides)
    assert (v.status, v.title) == ("ineligible", "不符合申报条件")
    assert [r.id for r in v.reasons] == [condition]
    assert v.reasons[0].clause_id == clause
    assert v.reasons[0].clause_label == kb.clause_label(clause)
    assert v.cautions == ()
    text = sc.render_verdict(v)
    assert sc.flow.conditions[condition].text.rstrip("。") in text
    assert f"依据：{kb.clause_label(clause)}" in text


def test_individual_stops_at_once(sc, kb):
    state = sc.answer(sc.start(), "individual")
    assert state["done"] and state["history"] == ["org_type"]
    assert sc.view(state) is None


@pytest.mark.parametrize("org", ["other_company", "admin", "ps_company"])
def test_types_that_settle_the_function_question_skip_it(sc, org):
    state = sc.answer(sc.start(), org)
    assert state["step"] == "legal_person"
    assert (sc.view(state).number, sc.view(state).total) == (2, 8)


@pytest.mark.parametrize("org", ["public_inst", "assoc", "social_org"])
def test_other_types_are_asked_about_their_function(sc, org):
    assert sc.answer(sc.start(), org)["step"] == "public_function"


def test_several_failures_are_all_listed_in_order(sc, kb):
    v = verdict_of(sc, kb, legal_person="no", accident="some", support="no")
    assert [r.id for r in v.reasons] == ["no_legal_person", "had_accident", "no_support"]
    text = sc.render_verdict(v)
    assert "1. 不具有法人资格" in text and "2. 近三年内" in text and "3. 未获" in text


def test_every_failure_but_the_early_stop_at_once(sc, kb):
    v = verdict_of(sc, kb, org_type="other_company", legal_person="no", std_basis="no", accident="some",
                   credit="bad", support="no", channel="outside")
    assert [r.id for r in v.reasons] == [
        "no_public_function", "no_legal_person", "no_std_basis", "had_accident", "bad_credit", "no_support",
        "no_channel",
    ]
    assert len(sc.render_verdict(v)) < 1500


def test_field_not_listed_is_a_caution_not_a_refusal(sc, kb):
    v = verdict_of(sc, kb, field="other")
    assert (v.status, v.title) == ("caution", "基本符合，但需注意")
    assert [(r.id, r.clause_id) for r in v.cautions] == [("field_other", "二")]
    assert v.reasons == ()
    text = sc.render_verdict(v)
    assert "主要包括……等领域" in text and "下一步怎么做" in text


@pytest.mark.parametrize(("step", "caution"), [
    ("public_function", "confirm_function"),
    ("legal_person", "confirm_legal"),
    ("std_basis", "confirm_basis"),
    ("accident", "confirm_accident"),
    ("credit", "confirm_credit"),
    ("support", "confirm_support"),
])
def test_unsure_answers_are_cautions(sc, kb, step, caution):
    v = verdict_of(sc, kb, **{step: "unsure"})
    assert v.status == "caution"
    assert [r.id for r in v.cautions] == [caution]


def test_support_being_sought_is_a_caution(sc, kb):
    v = verdict_of(sc, kb, support="pending")
    assert v.status == "caution" and [r.id for r in v.cautions] == ["support_pending"]


def test_failure_with_cautions_is_ineligible_and_shows_both(sc, kb):
    v = verdict_of(sc, kb, field="other", credit="bad")
    assert v.status == "ineligible"
    assert [r.id for r in v.reasons] == ["bad_credit"]
    assert [r.id for r in v.cautions] == ["field_other"]
    assert "另需注意" in sc.render_verdict(v)


def test_every_caution_at_once_fits_one_message(sc, kb):
    v = verdict_of(sc, kb, public_function="unsure", legal_person="unsure", field="other", std_basis="unsure",
                   accident="unsure", credit="unsure", support="unsure", channel="city_unsure")
    assert v.status == "caution" and len(v.cautions) == 8
    assert len(sc.render_verdict(v)) < 1500


@pytest.mark.parametrize(("channel", "name", "quota"), [
    ("city_joint", "以联席会议名义推荐", "原则上每批控制为1个"),
    ("city_no_joint", "以市州政府办公室或质量技术监督局名义推荐", "原则上每批控制为1个"),
    ("provincial", "由省联席会议成员单位以本单位名义推荐", "每批不超过2个"),
])
def test_each_recommendation_channel(sc, kb, channel, name, quota):
    v = verdict_of(sc, kb, channel=channel)
    assert v.status == "eligible" and v.channel_id == channel
    assert name in v.channel and kb.clause_label("四.3") in v.channel
    assert quota in v.quota and kb.clause_label("四.1") in v.quota
    text = sc.render_verdict(v)
    assert name in text and quota in text


def test_unsure_about_joint_meeting_explains_both_city_routes(sc, kb):
    v = verdict_of(sc, kb, channel="city_unsure")
    assert v.status == "caution" and [r.id for r in v.cautions] == ["channel_unsure"]
    assert "以联席会议名义" in v.channel and "市州政府办公室或质量技术监督局名义" in v.channel
    assert "每批控制为1个" in v.quota


def test_no_known_channel_is_a_caution_naming_both_quotas(sc, kb):
    v = verdict_of(sc, kb, channel="other")
    assert v.status == "caution" and [r.id for r in v.cautions] == ["channel_unclear"]
    assert "每批1个" in v.quota and "不超过2个" in v.quota


def test_materials_checklist(sc, kb):
    v = verdict_of(sc, kb)
    text = "\n".join(v.materials)
    for word in ("推荐函", "一式四份", "纸质材料和电子档文件", "加盖印章", "参加单位", "可有可无", "保证单位",
                 "试点属地县区以上人民政府", "指导单位", "市州以上行业主管部门或标准化主管部门"):
        assert word in text
    for clause in ("四.1", "四.3", "附件.封面", "附件.三.2", "附件.三.3"):
        assert kb.clause_label(clause) in text


def test_deadline_passed(sc, kb):
    v = verdict_of(sc, kb, today=AFTER)
    assert v.deadline_passed
    assert "本批申报已于2016年5月20日截止" in v.deadline and "逾期不再受理" in v.deadline
    assert v.deadline_note.startswith("请注意：本批申报已于2016年5月20日截止（逾期不再受理）")
    text = sc.render_verdict(v)
    assert text.index(v.deadline_note) < text.index("下一步怎么做")


def test_deadline_ahead(sc, kb):
    v = verdict_of(sc, kb, today=BEFORE)
    assert not v.deadline_passed
    assert "还有19天" in v.deadline and "截止" in v.deadline
    assert "已于" not in v.deadline and v.deadline_note == ""


def test_deadline_day_itself(sc, kb):
    v = verdict_of(sc, kb, today=date(2016, 5, 20))
    assert not v.deadline_passed and "就是截止日" in v.deadline


def test_duration_contact_and_selection(sc, kb):
    v = verdict_of(sc, kb)
    assert "2-3年" in v.duration and kb.clause_label("四.2") in v.duration
    assert "许钦祥" in v.contact and "87710317" in v.contact
    assert "择优选取" in v.selection
    text = sc.render_verdict(v)
    assert "2-3年" in text and "87710317" in text


def test_ineligible_report_still_gives_deadline_and_contact(sc, kb):
    text = sc.render_verdict(verdict_of(sc, kb, org_type="individual"))
    assert "不符合申报条件" in text and "87710317" in text and "2016年5月20日" in text
    assert "下一步怎么做" not in text


def test_verdict_before_the_end_is_refused(sc, kb):
    with pytest.raises(InvalidAnswer):
        sc.verdict(sc.start(), AFTER, kb.meta)


# -- moving through the interview -------------------------------------------------------------


def test_view_shows_question_options_help_and_clauses(sc, kb):
    view = sc.view(sc.start())
    assert (view.step_id, view.number, view.total, view.can_back) == ("org_type", 1, 9, False)
    assert ("individual", "个人或未注册的团体") in view.options
    assert view.clause_labels == (kb.clause_label("三.1"),)
    assert "具有法人资格" in view.help
    assert SelfCheck.render_help(view).endswith(f"依据：{kb.clause_label('三.1')}")
    assert "7. 其他企业" in SelfCheck.render_step(view)
    assert " " not in view.help  # folded YAML lines are joined without spaces


def test_back_undoes_the_last_answer(sc):
    state = sc.answer(sc.answer(sc.start(), "public_inst"), "yes")
    back = sc.back(state)
    assert back["step"] == "public_function"
    assert back["answers"] == {"org_type": "public_inst"} and back["history"] == ["org_type"]
    assert sc.view(back).can_back


def test_back_at_the_first_question_changes_nothing(sc):
    assert sc.back(sc.start()) == sc.start()


def test_back_after_a_skip_returns_to_the_question_that_skipped(sc):
    state = sc.answer(sc.start(), "other_company")
    back = sc.back(state)
    assert back["step"] == "org_type" and back["answers"] == {}


def test_back_from_the_verdict_and_change_the_answer(sc, kb):
    done = run(sc)
    back = sc.back(done)
    assert not back["done"] and back["step"] == "channel"
    changed = sc.answer(back, "provincial")
    assert sc.verdict(changed, AFTER, kb.meta).channel_id == "provincial"
    back_twice = sc.back(sc.back(back))
    assert back_twice["step"] == "credit"


def test_back_out_of_an_early_stop(sc):
    back = sc.back(sc.answer(sc.start(), "individual"))
    assert back == sc.start()


def test_restart(sc):
    assert sc.restart() == sc.start()
    assert sc.restart()["history"] == []


def test_answer_does_not_change_the_given_state(sc):
    state = sc.start()
    snapshot = json.dumps(state)
    sc.answer(state, "admin")
    assert json.dumps(state) == snapshot


def test_option_of_another_step_is_refused(sc):
    state = sc.start()
    with pytest.raises(InvalidAnswer):
        sc.answer(state, "yes")  # a yes/no option while the question is the organisation type
    assert issubclass(InvalidAnswer, ValueError)


def test_old_button_is_refused_even_if_the_option_id_fits(sc):
    state = sc.answer(sc.answer(sc.start(), "public_inst"), "yes")  # now at legal_person
    with pytest.raises(InvalidAnswer):
        sc.answer(state, "yes", step_id="public_function")
    assert sc.answer(state, "yes", step_id="legal_person")["step"] == "field"


def test_answer_after_the_end_is_refused(sc):
    with pytest.raises(InvalidAnswer):
        sc.answer(run(sc), "yes")


@pytest.mark.parametrize("state", [
    None, [], {}, {"flow_version": "old", "step": "org_type", "answers": {}, "history": [], "done": False},
])
def test_malformed_or_old_state_is_stale(sc, state):
    assert not sc.is_current(state)
    with pytest.raises(StaleState):
        sc.answer(state, "admin")


def test_tampered_state_is_stale(sc):
    state = sc.answer(sc.start(), "admin")
    state["answers"]["org_type"] = "no_such_option"
    with pytest.raises(StaleState):
        sc.view(state)


def test_state_survives_json_and_a_restarted_engine(sc, kb):
    state = sc.answer(sc.answer(sc.answer(sc.start(), "assoc"), "yes"), "yes")
    restored = json.loads(json.dumps(state, ensure_ascii=False))
    fresh = load_selfcheck(kb)  # as after a bot restart
    assert fresh.is_current(restored)
    assert fresh.view(restored).step_id == "field"
    for step in ("field", "std_basis", "accident", "credit", "support", "channel"):
        restored = json.loads(json.dumps(fresh.answer(restored, GOOD[step])))
    assert fresh.verdict(restored, AFTER, kb.meta).status == "eligible"


def test_edited_flow_makes_old_states_stale(sc, kb, tmp_path):
    state = sc.answer(sc.start(), "admin")
    edited = tmp_path / "selfcheck.yaml"
    edited.write_text(DEFAULT_PATH.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
    other = SelfCheck(load_flow(edited, kb.clauses))
    assert other.flow.version != sc.flow.version
    assert not other.is_current(state)


# -- typed answers ------------------------------------------------------------------------------


def at(sc: SelfCheck, step: str) -> dict:
    """A state whose current question is `step`, reached with good answers."""
    state = sc.start()
    while state["step"] != step:
        state = sc.answer(state, GOOD[state["step"]])
    return state


@pytest.mark.parametrize(("step", "text", "expected"), [
    ("org_type", "2", "public_inst"),
    ("org_type", "２", "public_inst"),
    ("org_type", "事业单位", "public_inst"),
    ("org_type", "我们是事业单位。", "public_inst"),
    ("org_type", "协会", "assoc"),
    ("org_type", "个人", "individual"),
    ("org_type", "民办非企业单位", "social_org"),
    ("org_type", "企业", None),
    ("org_type", "9", None),
    ("public_function", "是", "yes"),
    ("public_function", "有的", "yes"),
    ("public_function", "对", "yes"),
    ("public_function", "没有", "no"),
    ("public_function", "沒有", "no"),
    ("public_function", "否", "no"),
    ("public_function", "我们没有这个职能", "no"),
    ("public_function", "不清楚", "unsure"),
    ("public_function", "我也不太确定", "unsure"),
    ("public_function", "今天天气如何", None),
    ("accident", "没有", "none"),
    ("accident", "从来没发生过", "none"),
    ("accident", "有", "some"),
    ("accident", "是", "some"),
    ("credit", "没有不良记录", "good"),
    ("credit", "良好", "good"),
    ("credit", "有失信记录", "bad"),
    ("credit", "从未失信", None),  # a negated term is not taken at face value
    ("accident", "从没出过事故", "none"),
    ("field", "养老", "elderly"),
    ("field", "教育", "education"),
    ("field", "交通", "transport"),
    ("field", "其他", "other"),
    ("channel", "已建立", "city_joint"),
    ("channel", "还没有建立联席会议", "city_no_joint"),
    ("channel", "省直部门", "provincial"),
    ("channel", "不清楚", "city_unsure"),
    ("channel", "4", "provincial"),
])
def test_match_text(sc, step, text, expected):
    assert sc.match_text(at(sc, step), text) == expected


def test_match_text_after_the_end_is_none(sc):
    assert sc.match_text(run(sc), "1") is None


# -- recording and form data ----------------------------------------------------------------------


def test_summary_and_record_are_plain_data(sc, kb):
    state = run(sc, field="other")
    summary = sc.summary_of_answers(state)
    assert list(summary) == state["history"]
    assert summary["org_type"] == {"question": sc.flow.step("org_type").question, "option": "public_inst",
                                   "label": "事业单位"}
    record = sc.verdict(state, AFTER, kb.meta).as_record()
    assert record == {"status": "caution", "failed": [], "cautions": ["field_other"], "channel": "city_joint"}
    json.dumps([summary, record])


def test_form_answers(sc):
    answers = sc.form_answers(run(sc))
    assert answers["org_type"] == "事业单位"
    assert answers["field"] == "公共教育" and answers["pilot_name"] == "公共教育服务"
    # The form's 质量、安全、环保事故 is not what the interview asks: never pre-filled.
    assert "accident" not in answers
    assert "联席会议名义" in answers["channel"]
    other = sc.form_answers(run(sc, field="other"))
    assert "field" not in other and "pilot_name" not in other


# -- broken YAML ------------------------------------------------------------------------------------


def real_doc() -> dict:
    return yaml.safe_load(DEFAULT_PATH.read_text(encoding="utf-8"))


def broken(tmp_path: Path, doc: dict | str) -> Path:
    path = tmp_path / "selfcheck.yaml"
    path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


def step_of(doc: dict, sid: str) -> dict:
    return next(s for s in doc["steps"] if s["id"] == sid)


def option_of(doc: dict, sid: str, oid: str) -> dict:
    return next(o for o in step_of(doc, sid)["options"] if o["id"] == oid)


def test_real_yaml_round_trips_through_the_test_writer(kb, tmp_path):
    load_flow(broken(tmp_path, real_doc()), kb.clauses)  # the variants below start from a valid file


def _missing_question(d):
    del step_of(d, "legal_person")["question"]


def _duplicate_step(d):
    d["steps"].append(dict(step_of(d, "credit")))


def _duplicate_option(d):
    step_of(d, "accident")["options"][1]["id"] = "none"


def _bad_step_clause(d):
    step_of(d, "field")["clauses"] = ["九.9"]


def _bad_condition_clause(d):
    next(c for c in d["conditions"] if c["id"] == "bad_credit")["clause"] = "九.9"


def _missing_next(d):
    option_of(d, "org_type", "admin")["next"] = "nowhere"


def _backward_next(d):
    option_of(d, "credit", "good")["next"] = "org_type"


def _unknown_condition(d):
    option_of(d, "credit", "bad")["fails"] = "no_such_condition"


def _unknown_caution(d):
    option_of(d, "credit", "unsure")["caution"] = ["no_such_caution"]


def _unknown_channel(d):
    option_of(d, "channel", "provincial")["channel"] = "nowhere"


def _bad_means(d):
    option_of(d, "credit", "good")["means"] = "maybe"


def _boolean_id(d):
    option_of(d, "legal_person", "yes")["id"] = True


def _now_and_next(d):
    option_of(d, "org_type", "individual")["next"] = "credit"


def _one_option(d):
    step_of(d, "credit")["options"] = step_of(d, "credit")["options"][:1]


def _missing_condition_text(d):
    del d["conditions"][0]["text"]


def _bad_channel_clause(d):
    d["channels"][0]["quota_clause"] = "九.9"


def _bad_material_clause(d):
    d["materials"][0]["clause"] = "九.9"


def _missing_verdict_title(d):
    del d["verdicts"]["caution"]["title"]


def _boolean_typed_word(d):
    d["typed_answers"]["yes"].append(True)


@pytest.mark.parametrize(("mutate", "entry", "field"), [
    (_missing_question, "legal_person", "question"),
    (_duplicate_step, "credit", "id"),
    (_duplicate_option, "accident", "options"),
    (_bad_step_clause, "field", "clauses"),
    (_bad_condition_clause, "bad_credit", "clause"),
    (_missing_next, "org_type.admin", "next"),
    (_backward_next, "credit.good", "next"),
    (_unknown_condition, "credit.bad", "fails"),
    (_unknown_caution, "credit.unsure", "caution"),
    (_unknown_channel, "channel.provincial", "channel"),
    (_bad_means, "credit.good", "means"),
    (_boolean_id, "legal_person 第 1 个选项", "id"),
    (_now_and_next, "org_type.individual", "next"),
    (_one_option, "credit", "options"),
    (_missing_condition_text, "not_registered", "text"),
    (_bad_channel_clause, "city_joint", "quota_clause"),
    (_bad_material_clause, "materials 第 1 项", "clause"),
    (_missing_verdict_title, "verdicts.caution", "title"),
    (_boolean_typed_word, "typed_answers", "yes"),
])
def test_broken_yaml_names_file_entry_and_field(kb, tmp_path, mutate, entry, field):
    doc = real_doc()
    mutate(doc)
    with pytest.raises(KnowledgeError) as caught:
        load_flow(broken(tmp_path, doc), kb.clauses)
    err = caught.value
    assert (err.file, err.entry, err.field) == ("selfcheck.yaml", entry, field)
    assert str(err).startswith(f"selfcheck.yaml，条目 {entry}，字段 {field}：")
    assert "Traceback" not in str(err)


def test_bad_clause_message_names_the_clause(kb, tmp_path):
    doc = real_doc()
    _bad_step_clause(doc)
    with pytest.raises(KnowledgeError, match="九.9"):
        load_flow(broken(tmp_path, doc), kb.clauses)


def test_empty_steps(kb, tmp_path):
    doc = real_doc()
    doc["steps"] = []
    with pytest.raises(KnowledgeError) as caught:
        load_flow(broken(tmp_path, doc), kb.clauses)
    assert (caught.value.entry, caught.value.field) == (None, "steps")


def test_yaml_syntax_error(kb, tmp_path):
    with pytest.raises(KnowledgeError, match=r"YAML 语法错误，第 \d+ 行第 \d+ 列"):
        load_flow(broken(tmp_path, "steps:\n  - id: [unclosed\n"), kb.clauses)


def test_missing_file(kb, tmp_path):
    with pytest.raises(KnowledgeError, match="文件不存在"):
        load_flow(tmp_path / "selfcheck.yaml", kb.clauses)
