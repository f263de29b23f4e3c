"""Frames and words of Mandarin-English code-switching sentences, Singapore/Malaysia style.

A sentence comes from a *frame* with typed slots (``{noun}``, ``{verb}``, ...). Mandarin
matrix frames (``CS_FRAMES``) take English insertions (``ENGLISH``) for code-switched
sentences, or Mandarin fillers (``MANDARIN``) for monolingual Mandarin ones; monolingual
English sentences fill ``EN_FRAMES`` with English words. Text follows the corpus convention:
Mandarin characters unspaced, English lowercase, single spaces only at script boundaries and
between English words, no punctuation or digits.

:mod:`espnet_cs.synth.conversation` builds the utterances of both corpora from them and divides
the frames between the splits (``split_of``).
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Mapping, Sequence

HAN = "\u4e00-\u9fff"
TOKEN = re.compile(rf"[{HAN}]+|[a-z]+")
SLOT = re.compile(r"\{(\w+)\}")


def _words(text: str) -> tuple[str, ...]:
    return tuple(w.strip() for w in text.split(",") if w.strip())


ENGLISH: dict[str, tuple[str, ...]] = {
    "noun": _words("""
        project, deadline, report, email, presentation, proposal, assignment, slides, budget,
        schedule, contract, invoice, document, file, password, account, app, website, laptop,
        phone, printer, charger, homework, thesis, paper, resume, feedback, booking, order,
        parcel, receipt, ticket, voucher, discount, salary, bonus, promotion, target, plan,
        idea, solution, problem, issue, bug, update, version, design, layout, template,
        spreadsheet, database, server, network, wifi, data, result, survey, sample, experiment,
        agenda, minutes, timeline, quotation, claim, form, application, policy, portfolio,
        poster, video, photo, caption, script, logo, brochure, newsletter, chart, figure,
        table, draft, summary, outline, reference, checklist, password manager, user manual,
        group chat, calendar, inbox, attachment, link, login, browser, keyboard, mouse,
        monitor, headphones, backpack, umbrella, wallet, card, key, bill, loan, insurance
    """),
    "verb": _words("""
        check, confirm, cancel, update, submit, print, send, forward, reply, review, edit, fix,
        settle, arrange, book, change, postpone, share, upload, download, install, delete,
        save, test, try, finish, prepare, discuss, explain, present, approve, sign, pay,
        transfer, pack, clean, organize, handle, manage, sort out, follow up, double check,
        look at, go through, clarify, summarize, translate, format, rename, refund, renew,
        register, replace, restart, reschedule, revise, schedule, scan, track, verify, write
    """),
    "feel": _words("""
        busy, tired, stressed, free, happy, sad, angry, bored, hungry, sleepy, excited,
        nervous, worried, confident, relaxed, frustrated, confused, upset, moody, lazy,
        motivated, jealous, shy, sick, lonely, grateful, disappointed, satisfied, surprised,
        emotional
    """),
    "quality": _words("""
        expensive, cheap, convenient, complicated, simple, easy, difficult, urgent, important,
        interesting, boring, efficient, flexible, professional, serious, casual, nice, good,
        bad, cool, crazy, random, awkward, weird, slow, fast, messy, fresh, healthy, spicy,
        sweet, salty, troublesome, reasonable, useful, popular, crowded, quiet, noisy, fancy
    """),
    "place": _words("""
        office, canteen, library, mall, gym, airport, hospital, clinic, bank, school, campus,
        hostel, condo, hotel, cafe, restaurant, food court, hawker center, supermarket, cinema,
        park, beach, train station, bus stop, lab, lecture hall, meeting room, pantry,
        car park, night market, swimming pool, bookstore, post office, pharmacy
    """),
    "time": _words("""
        tomorrow, tonight, later, next week, next month, this weekend, this friday,
        this saturday, on monday, on tuesday, on wednesday, on thursday, after lunch,
        after work, after class, before dinner, tomorrow morning, tomorrow night, next time,
        later today, by friday, end of the month, first thing tomorrow, during the break
    """),
    "food": _words("""
        chicken rice, bubble tea, coffee, milk tea, pizza, burger, fries, salad, sushi, ramen,
        pasta, steak, sandwich, ice cream, cake, cookies, noodles, curry, fried rice,
        kaya toast, waffles, pancakes, donuts, hot pot, fish and chips, smoothie, juice,
        soup, dessert, brunch
    """),
    "person": _words("""
        boss, manager, colleague, client, customer, lecturer, professor, tutor, classmate,
        roommate, friend, neighbor, supervisor, intern, teammate, partner, landlord, driver,
        doctor, teacher, cousin, director
    """),
    "event": _words("""
        meeting, class, lecture, tutorial, party, gathering, workshop, seminar, interview,
        training, dinner, lunch, concert, wedding, birthday party, conference, briefing,
        orientation, rehearsal, practice, exam, quiz, movie, game, match, webinar, camp,
        trip, career fair, farewell party, team building, open house
    """),
    "marker": _words("""
        actually, anyway, basically, by the way, to be honest, so, but, then, honestly,
        seriously, in the end, luckily, unfortunately, frankly speaking, at least, maybe,
        i think, you know, i mean, like, okay, well, oh my god, in fact, somehow
    """),
    "reply": _words("""
        no problem, never mind, thank you, thanks a lot, sorry, see you, good luck,
        take care, no worries, my bad, no way, why not, sounds good, that is fine,
        all the best, same here, fair enough, so far so good, up to you, whatever,
        really, just kidding, not bad, congrats, well done, good job, what to do,
        can or not, of course, sure, alright, cheers, bye, for real, let me see
    """),
    "can": _words("can, could"),
}

MANDARIN: dict[str, tuple[str, ...]] = {
    "noun": _words("""
        项目, 报告, 邮件, 文件, 合同, 预算, 计划, 功课, 论文, 简历, 密码, 账号, 电脑, 手机,
        打印机, 充电器, 订单, 包裹, 收据, 门票, 优惠券, 工资, 奖金, 方案, 问题, 设计, 数据,
        资料, 表格, 作业, 海报, 视频, 照片, 日历, 钥匙, 钱包, 雨伞
    """),
    "verb": _words("""
        检查, 确认, 取消, 更新, 提交, 打印, 发送, 转发, 回复, 修改, 处理, 安排, 准备, 讨论,
        解释, 整理, 下载, 上传, 删除, 保存, 翻译, 填, 看看, 交
    """),
    "feel": _words("忙, 累, 开心, 紧张, 无聊, 饿, 困, 担心, 烦, 兴奋, 生气, 难过, 轻松, 害羞"),
    "quality": _words("""
        贵, 便宜, 方便, 复杂, 简单, 容易, 难, 重要, 急, 有意思, 麻烦, 好, 快, 慢, 乱, 辣, 甜,
        安静, 吵, 热闹
    """),
    "place": _words("""
        办公室, 食堂, 图书馆, 商场, 健身房, 机场, 医院, 银行, 学校, 宿舍, 酒店, 咖啡店, 餐厅,
        超市, 电影院, 公园, 海边, 车站, 实验室, 会议室, 停车场, 夜市, 书店, 邮局
    """),
    "time": _words("""
        明天, 今晚, 等一下, 下个星期, 下个月, 这个周末, 明天早上, 明天晚上, 星期一, 星期五,
        下班以后, 下课以后, 吃完饭以后, 月底
    """),
    "food": _words("鸡饭, 奶茶, 咖啡, 炒饭, 火锅, 蛋糕, 冰淇淋, 水果, 点心, 米粉, 粥, 饺子, 包子, 面包"),
    "person": _words("老板, 经理, 同事, 客户, 老师, 教授, 同学, 室友, 朋友, 邻居, 主管, 医生, 司机, 表哥, 阿姨"),
    "event": _words("聚会, 面试, 讲座, 培训, 婚礼, 比赛, 考试, 彩排, 研讨会, 演唱会, 生日会, 晚宴, 团建"),
    "marker": _words("其实, 反正, 老实说, 所以, 但是, 然后, 还好, 可惜, 至少, 可能, 我觉得, 说真的"),
    "reply": _words("没问题, 没关系, 谢谢, 不好意思, 再见, 加油, 保重, 算了, 随便, 不错, 好的, 真的吗"),
    "can": _words("可以, 能"),
}

CS_FRAMES: tuple[str, ...] = _words("""
    这个{noun}的{noun}是{time},
    我{time}要去{event},
    你{can}帮我{verb}一下吗,
    {marker}我觉得这个{noun}很{quality},
    我今天真的很{feel}不想去{event},
    我们{time}去{place}吃{food}好不好,
    你{can}帮我{verb}这个{noun}吗,
    我的{person}叫我{time}{verb}那个{noun},
    那个{person}很{feel}因为{noun}还没有弄好,
    你有没有{verb}我的{noun},
    我刚刚在{place}遇到我的{person},
    今天的{event}几点开始你知道吗,
    今天的{event}取消了我们去吃{food}吧,
    等一下我们在{place}门口见面,
    我已经{verb}了那个{noun}你再看一下,
    这个{noun}太{quality}了我不要,
    我不知道要怎么{verb}这个{noun},
    你{time}有空吗我们去{place}坐一下,
    {reply}我{time}再{verb},
    我的{noun}坏了要拿去{place}修,
    你觉得这个{noun}会不会太{quality},
    我们的{person}说{noun}要{time}{verb},
    {marker}我{time}不能来{event},
    他每个星期都去{place}两次,
    我最喜欢吃{place}的{food},
    你要不要跟我们一起去{event},
    我{time}要跟{person}{verb}那个{noun},
    这个{noun}我还没有{verb}怎么办,
    那个{place}的{food}真的很{quality},
    你的{noun}弄好了没有啊,
    为什么你的{person}今天那么{feel},
    {marker}这个{event}其实没有什么,
    我们要在{time}之前{verb}所有的{noun},
    你记得{verb}那个{noun}哦,
    我在{place}等你快点来,
    今天的{food}有一点{quality},
    我{feel}到不想去{event}了,
    如果你觉得{feel}的话就早点回家,
    你问一下{person}{time}有没有空,
    这次的{event}在{place}举行,
    老实说那个{noun}真的很{quality},
    我要先{verb}我的{noun}才可以走,
    他们还在{place}讨论那个{noun},
    你不用{verb}了我已经弄好了,
    我下班以后要去{place}买{food},
    这个{noun}到底是谁负责的,
    你觉得我们的{noun}怎么样,
    我的{person}{time}请我们吃{food},
    我们一起{verb}这个{noun}吧,
    {reply}我们下次再{verb},
    我又忘记{verb}我的{noun}了,
    这个{event}好像有一点{quality},
    我们的{noun}和{noun}都准备好了,
    你的{person}是不是很{feel},
    每次去{place}都要排队排好久,
    你先去{place}我{time}来找你,
    我觉得你应该先{verb}那个{noun},
    今天{place}的人怎么那么多,
    {marker}我们{time}再讨论这个{noun},
    那个{person}又改了我们的{noun},
    我{time}没有时间去{event},
    你要{verb}还是我来{verb},
    那个{noun}怎么会那么{quality},
    我们{time}去{place}好吗,
    出门的时候不要忘记带你的{noun},
    {reply}你{can}先{verb}我的{noun}吗,
""")

EN_FRAMES: tuple[str, ...] = _words("""
    can you {verb} the {noun} {time},
    i am so {feel} today,
    let us meet at the {place} {time},
    my {person} wants the {noun} {time},
    {marker} the {noun} is really {quality},
    do you want to go for {food} at the {place},
    i have to {verb} my {noun} before the {event},
    the {event} is at the {place} {time},
    did you {verb} the {noun} already,
    {reply} i will {verb} it {time},
    my {person} is very {feel} about the {noun},
    we are going to the {event} {time},
    i think this {noun} is too {quality},
    please {verb} the {noun} and send it to my {person},
    the {food} at this {place} is quite {quality},
    i forgot to {verb} the {noun} again,
    are you free to join the {event} {time},
    {marker} i do not like this {noun},
    who is in charge of the {noun},
    i saw your {person} at the {place},
    the {noun} for the {event} is not ready yet,
    you should {verb} the {noun} first,
    why is your {person} so {feel} today,
    {marker} the {event} was quite {quality},
    let us have {food} after the {event},
    i need to go to the {place} {time},
    tell the {person} to {verb} the {noun},
    this {noun} is {quality} but that {noun} is not,
    {reply} i will be at the {place},
    how was the {event} with your {person},
""")


def normalize(text: str) -> str:
    """Corpus text convention: lowercase, Mandarin runs unspaced, one space elsewhere."""
    return re.sub(f"(?<=[{HAN}]) (?=[{HAN}])", "", " ".join(TOKEN.findall(text.lower())))


def fill(frame: str, rng: random.Random, english: Sequence[bool]) -> str:
    """Fill the slots of ``frame`` in order; slot ``i`` gets an English word if ``english[i]``.

    Words are not repeated within a sentence.
    """
    used: set[str] = set()
    choices = iter(english)

    def pick(match: re.Match) -> str:
        words = (ENGLISH if next(choices) else MANDARIN)[match.group(1)]
        word = rng.choice([w for w in words if w not in used])
        used.add(word)
        return f" {word} "

    return normalize(SLOT.sub(pick, frame))


def split_of(text: str, shares: Mapping[str, float]) -> str:
    """The split owning ``text`` (a frame): a fixed hash partition by ``shares``, for any seed."""
    position = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") / 2**64
    for split, share in shares.items():
        position -= share
        if position < 0:
            return split
    return split
