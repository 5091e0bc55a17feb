from knowledge.answering.normalise import Normaliser, basic_normalise, phrase_rewrites
from knowledge.answering.smalltalk import SmallTalkDetector


def test_full_width_and_case_fold():
    assert basic_normalise("ＰＩＬＯＴ　申报？？") == "pilot 申报?"


def test_traditional_to_simplified():
    assert basic_normalise("申報截止日期是哪天？") == "申报截止日期是哪天?"
    assert basic_normalise("聯繫電話") == "联系电话"


def test_punctuation_unified_and_cjk_spacing_removed():
    assert basic_normalise("截止 时间、联系 电话；") == "截止时间,联系电话;"
    assert basic_normalise("application   form") == "application form"


def test_control_characters_and_emoji_dropped():
    assert basic_normalise("截止\u200b时间😀") == "截止时间"


def test_misspellings_and_phrase_synonyms_rewritten():
    norm = Normaliser(phrase_rewrites({"申抱": "申报", "联席会义": "联席会议"},
                                      [("申请书", "application form"), ("截止", "截至")]))
    assert norm("行业协会能不能申抱") == "行业协会能不能申报"
    assert norm("联席会义") == "联席会议"
    # multi-word English synonym becomes the canonical word before segmentation
    assert norm("要附 Application Form 吗") == "要附申请书吗"
    # single-word synonyms are left to the segmenter (token level), not rewritten here
    assert norm("截至") == "截至"


def test_smalltalk_detect_and_strip(kb):
    detector = SmallTalkDetector(kb.smalltalk)
    assert detector.detect("你好！").id == "greeting"
    assert detector.detect("謝謝啦").id == "thanks"
    assert detector.detect("你能做什么？").id == "capabilities"
    assert detector.detect("你好，几号截止？") is None
    assert detector.strip("您好，请问几号截止？谢谢") == "请问几号截止"  # noqa: B005 (our method, not str.strip)
