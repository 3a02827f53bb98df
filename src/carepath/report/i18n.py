"""The words of the care report in English and Vietnamese: plain metric names and definitions,
headings, and local, readable numbers and dates.

>>> t = Words("vi")
>>> t("goals")
'Mục tiêu'
>>> t.pct(0.875), Words("en").pct(0.875)
('87,5%', '87.5%')
>>> Words("en").day("2027-01-18"), t.day("2027-01-18")
('Mon 18 Jan 2027', 'T2, 18/01/2027')
>>> Words("en").instant("2027-01-18T09:05:00+07:00")
'Mon 18 Jan 2027, 09:05'
>>> Words("en").metric_name("fcr")
'First-contact resolution'
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime
from typing import Any

from carepath.metrics.targets import KIND

__all__ = ["LANGS", "METRICS", "Words", "fmt_duration"]

LANGS = ("en", "vi")

#: Built-in metric → (name, definition) per language.
METRICS: dict[str, dict[str, tuple[str, str]]] = {
    "csat": {
        "en": (
            "Customer satisfaction (CSAT)",
            "Share of survey answers scoring 4 or 5 out of 5.",
        ),
        "vi": (
            "Mức độ hài lòng (CSAT)",
            "Tỷ lệ câu trả lời khảo sát đạt 4 hoặc 5 trên thang 5.",
        ),
    },
    "nps": {
        "en": (
            "Net Promoter Score (NPS)",
            "Promoters (9–10) minus detractors (0–6), in points from −100 to +100.",
        ),
        "vi": (
            "Chỉ số khách hàng giới thiệu (NPS)",
            "Tỷ lệ người ủng hộ (9–10) trừ người phản đối (0–6), tính theo điểm từ −100 đến +100.",
        ),
    },
    "ces": {
        "en": ("Customer effort (CES)", "Mean answer on the 1–7 effort scale."),
        "vi": ("Mức độ dễ dàng (CES)", "Điểm trung bình trên thang nỗ lực 1–7."),
    },
    "first_response_time": {
        "en": (
            "Time to first response",
            "Business time from a ticket's opening to the first agent reply.",
        ),
        "vi": (
            "Thời gian phản hồi đầu tiên",
            "Thời gian làm việc từ lúc mở yêu cầu đến lần trả lời đầu tiên của nhân viên.",
        ),
    },
    "resolution_time": {
        "en": (
            "Time to resolution",
            "Business time from opening to solving, not counting time spent waiting for the customer.",
        ),
        "vi": (
            "Thời gian giải quyết",
            "Thời gian làm việc từ lúc mở đến lúc giải quyết xong, không tính thời gian chờ khách hàng.",
        ),
    },
    "sla_attainment": {
        "en": (
            "Deadlines met (SLA attainment)",
            "Share of service deadlines met, among those that finished (met or missed).",
        ),
        "vi": (
            "Tỷ lệ đạt SLA",
            "Tỷ lệ thời hạn dịch vụ được đáp ứng trong số thời hạn đã kết thúc (đạt hoặc trễ).",
        ),
    },
    "fcr": {
        "en": (
            "First-contact resolution",
            "Solved tickets answered with a single reply and never reopened.",
        ),
        "vi": (
            "Giải quyết ngay lần đầu",
            "Tỷ lệ yêu cầu được giải quyết chỉ với một lần trả lời và không bị mở lại.",
        ),
    },
    "aht": {
        "en": (
            "Average handling time",
            "Mean length of a handled call or chat, talk and after-call work together.",
        ),
        "vi": (
            "Thời gian xử lý trung bình",
            "Thời lượng trung bình của một cuộc gọi hay cuộc trò chuyện, gồm cả phần việc sau cuộc gọi.",
        ),
    },
    "reopen_rate": {
        "en": ("Reopen rate", "Solved tickets that the customer reopened."),
        "vi": ("Tỷ lệ mở lại", "Tỷ lệ yêu cầu đã giải quyết bị khách hàng mở lại."),
    },
    "repeat_purchase_rate": {
        "en": (
            "Repeat purchase rate",
            "Customers with two orders or more, among customers who ordered.",
        ),
        "vi": (
            "Tỷ lệ mua lại",
            "Tỷ lệ khách hàng đặt từ hai đơn trở lên trong số khách hàng đã đặt hàng.",
        ),
    },
    "complaint_rate": {
        "en": ("Complaint rate", "Complaints filed per ticket opened."),
        "vi": ("Tỷ lệ khiếu nại", "Số khiếu nại trên mỗi yêu cầu được mở."),
    },
    "return_rate": {
        "en": ("Return rate", "Orders returned per order placed."),
        "vi": ("Tỷ lệ trả hàng", "Số đơn bị trả lại trên mỗi đơn đặt."),
    },
}

_WORDS: dict[str, dict[str, str]] = {
    "report": {"en": "Care report", "vi": "Báo cáo chăm sóc khách hàng"},
    "what_if": {"en": "What-if", "vi": "Giả định"},
    "period": {"en": "Period", "vi": "Khoảng thời gian"},
    "events": {"en": "events", "vi": "sự kiện"},
    "cases": {"en": "tickets", "vi": "yêu cầu"},
    "timezone": {"en": "times in", "vi": "giờ theo"},
    "from_store": {"en": "from the live case store", "vi": "từ kho yêu cầu đang chạy"},
    "headline": {"en": "At a glance", "vi": "Tổng quan"},
    "goals": {"en": "Goals", "vi": "Mục tiêu"},
    "metrics": {"en": "Metrics", "vi": "Chỉ số"},
    "slas": {"en": "Service deadlines (SLAs)", "vi": "Thời hạn dịch vụ (SLA)"},
    "rates": {"en": "Deadlines by group", "vi": "Thời hạn theo nhóm"},
    "charts": {"en": "Trends", "vi": "Xu hướng"},
    "load": {"en": "Load and staffing", "vi": "Khối lượng và nhân sự"},
    "backlog": {"en": "Open tickets (backlog)", "vi": "Yêu cầu đang mở (tồn đọng)"},
    "agents_title": {"en": "Agents", "vi": "Nhân viên"},
    "agent": {"en": "Agent", "vi": "Nhân viên"},
    "cases_assigned": {"en": "Cases", "vi": "Yêu cầu"},
    "first_response_median": {"en": "First response (median)", "vi": "Phản hồi đầu (trung vị)"},
    "open_load": {"en": "Open now", "vi": "Đang giữ"},
    "agents_note": {
        "en": "Cases allocated from the roster as the runtime would; {queued} assignment(s) "
        "waited for a free agent.",
        "vi": "Yêu cầu được phân bổ theo danh sách nhân viên như khi chạy thật; {queued} lượt "
        "phân bổ phải chờ nhân viên rảnh.",
    },
    "no_goals": {"en": "The playbook sets no goals.", "vi": "Kịch bản chưa đặt mục tiêu nào."},
    "none": {"en": "none", "vi": "không có"},
    "metric": {"en": "Metric", "vi": "Chỉ số"},
    "meaning": {"en": "What it means", "vi": "Ý nghĩa"},
    "value": {"en": "Value", "vi": "Giá trị"},
    "samples": {"en": "Samples", "vi": "Số mẫu"},
    "goal": {"en": "Goal", "vi": "Mục tiêu"},
    "target": {"en": "Target", "vi": "Chỉ tiêu"},
    "status": {"en": "Status", "vi": "Trạng thái"},
    "window": {"en": "Window", "vi": "Giai đoạn"},
    "trend": {"en": "Previous window", "vi": "Giai đoạn trước"},
    "better": {"en": "better", "vi": "tốt hơn"},
    "worse": {"en": "worse", "vi": "kém hơn"},
    "days_left": {"en": "Days left", "vi": "Số ngày còn lại"},
    "owner": {"en": "Owner", "vi": "Phụ trách"},
    "attained": {"en": "on target", "vi": "đạt"},
    "missed": {"en": "off target", "vi": "chưa đạt"},
    "too_few_samples": {"en": "too few samples", "vi": "chưa đủ mẫu"},
    "invalid_target": {"en": "target unreadable", "vi": "chỉ tiêu không hợp lệ"},
    "n/a": {"en": "no data", "vi": "chưa có dữ liệu"},
    "rolling": {"en": "rolling, last {n} days", "vi": "cuốn chiếu, {n} ngày gần nhất"},
    "coverage": {
        "en": "data covers {k} of {n} days (from {d})",
        "vi": "dữ liệu có {k} trên {n} ngày (từ {d})",
    },
    "days_left_n": {"en": "{n} days left", "vi": "còn {n} ngày"},
    "ended": {"en": "window ended", "vi": "giai đoạn đã kết thúc"},
    "clock": {"en": "Deadline", "vi": "Thời hạn"},
    "met": {"en": "Met", "vi": "Đạt"},
    "breached": {"en": "Missed", "vi": "Trễ"},
    "cancelled": {"en": "Cancelled", "vi": "Hủy"},
    "attainment": {"en": "Met on time", "vi": "Tỷ lệ đạt"},
    "breach_rate": {"en": "Missed rate", "vi": "Tỷ lệ trễ"},
    "finished": {"en": "Finished", "vi": "Đã kết thúc"},
    "channel": {"en": "Channel", "vi": "Kênh"},
    "segment": {"en": "Segment", "vi": "Phân khúc"},
    "tier": {"en": "Tier", "vi": "Cấp"},
    "by_channel": {"en": "By channel", "vi": "Theo kênh"},
    "by_segment": {"en": "By segment", "vi": "Theo phân khúc"},
    "by_tier": {"en": "By tier", "vi": "Theo cấp xử lý"},
    "day": {"en": "Day", "vi": "Ngày"},
    "hour": {"en": "Hour", "vi": "Giờ"},
    "week": {"en": "Week of", "vi": "Tuần từ"},
    "contacts": {"en": "Contacts", "vi": "Lượt liên hệ"},
    "agents": {"en": "Agents needed", "vi": "Số nhân viên cần"},
    "busiest_hour": {"en": "Busiest hour", "vi": "Giờ cao điểm"},
    "contacts_busiest": {"en": "Contacts that hour", "vi": "Liên hệ trong giờ đó"},
    "answer_within": {"en": "First-response target", "vi": "Hạn phản hồi đầu tiên"},
    "staffing": {"en": "Staffing per channel", "vi": "Nhân sự theo kênh"},
    "staffing_note": {
        "en": "Erlang C for each channel's busiest hour, with its own handling time and "
        "first-response target; {target} of contacts answered in time.",
        "vi": "Erlang C cho giờ cao điểm của từng kênh, theo thời gian xử lý và hạn phản hồi "
        "đầu tiên của kênh đó; {target} liên hệ được trả lời đúng hạn.",
    },
    "load_daily": {"en": "Contacts per day", "vi": "Lượt liên hệ mỗi ngày"},
    "peak": {"en": "peak day", "vi": "ngày cao điểm"},
    "hourly": {
        "en": "Contacts per hour on the peak day ({d}) and agents needed",
        "vi": "Lượt liên hệ mỗi giờ trong ngày cao điểm ({d}) và số nhân viên cần",
    },
    "sla_weekly": {"en": "Deadlines met per week", "vi": "Tỷ lệ đạt thời hạn mỗi tuần"},
    "rate_chart": {"en": "Missed-deadline rate {by}", "vi": "Tỷ lệ trễ hạn {by}"},
    "goal_chart": {"en": "Goals against target", "vi": "Mục tiêu so với chỉ tiêu"},
    "csat_weekly": {"en": "Customer satisfaction per week", "vi": "Mức độ hài lòng mỗi tuần"},
    "nps_weekly": {"en": "NPS per week", "vi": "NPS mỗi tuần"},
    "partial": {"en": "partial week", "vi": "tuần chưa trọn"},
    "partial_note": {
        "en": "Hollow points are partial weeks: the data starts or ends inside them.",
        "vi": "Điểm rỗng là tuần chưa trọn: dữ liệu bắt đầu hoặc kết thúc giữa tuần.",
    },
    "partial_day": {"en": "partial day", "vi": "ngày chưa trọn"},
    "partial_day_note": {
        "en": "Outlined bars are partial days: the data starts or ends inside them.",
        "vi": "Cột chỉ có viền là ngày chưa trọn: dữ liệu bắt đầu hoặc kết thúc giữa ngày.",
    },
    "target_line": {"en": "target", "vi": "chỉ tiêu"},
    "no_data": {"en": "no data", "vi": "chưa có dữ liệu"},
    "open_cases": {"en": "Open tickets", "vi": "Yêu cầu đang mở"},
    "age": {"en": "Age", "vi": "Tuổi"},
    "stage": {"en": "Stage", "vi": "Giai đoạn xử lý"},
    "breached_open": {
        "en": "Open tickets past a deadline",
        "vi": "Yêu cầu đang mở đã trễ hạn",
    },
    "case": {"en": "Ticket", "vi": "Yêu cầu"},
    "overdue": {"en": "Overdue by", "vi": "Trễ"},
    "since": {"en": "Late since", "vi": "Trễ từ"},
    "as_of": {"en": "as of {t}", "vi": "tính đến {t}"},
    "shown": {"en": "{n} of {m} shown", "vi": "hiển thị {n} trên {m}"},
    "custom": {"en": "custom", "vi": "tùy chỉnh"},
    "median_etc": {
        "en": "median {median} · mean {mean} · 90% within {p90}",
        "vi": "trung vị {median} · trung bình {mean} · 90% trong vòng {p90}",
    },
    "differences": {"en": "Differences", "vi": "Khác biệt"},
    "base": {"en": "Current", "vi": "Hiện tại"},
    "compare": {"en": "Proposed", "vi": "Đề xuất"},
    "generated": {"en": "Made by carepath", "vi": "Tạo bởi carepath"},
    "ageing": {"en": "Ageing", "vi": "Thời gian tồn"},
    "total": {"en": "Total", "vi": "Tổng"},
    "rejected": {"en": "events rejected", "vi": "sự kiện bị từ chối"},
}

_UNIT = re.compile(r"(-?)(\d+)([dhms])")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_WEEKDAYS = {
    "en": ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"),
    "vi": ("T2", "T3", "T4", "T5", "T6", "T7", "CN"),
}


def fmt_duration(s: float | None) -> str:
    """Seconds → ``1h 05m`` / ``12m 30s`` / ``45s`` (``1.16e+295d`` beyond ~3,000 years)."""
    if s is None:
        return "—"
    s = float(s)
    neg = s < 0
    s = abs(s)
    if not s < 1e11:  # over ~3,000 years, or not finite: no day count of 300 digits
        return ("-" if neg else "") + (f"{s / 86400:.3g}d" if math.isfinite(s) else "∞")
    h, rem = divmod(round(s), 3600)
    m, sec = divmod(rem, 60)
    if h >= 24:
        d, h = divmod(h, 24)
        out = f"{d}d {h:02d}h"
    elif h:
        out = f"{h}h {m:02d}m"
    elif m:
        out = f"{m}m {sec:02d}s"
    else:
        out = f"{s:.0f}s"
    return ("-" if neg else "") + out


class Words:
    """The report's words and number/date formats in one language (``en`` or ``vi``)."""

    def __init__(self, lang: str = "en") -> None:
        if lang not in LANGS:
            raise ValueError(f"unknown language {lang!r}; expected one of {', '.join(LANGS)}")
        self.lang = lang

    def __call__(self, key: str, **kw: Any) -> str:
        """The phrase ``key``, with ``{name}`` placeholders filled from ``kw``."""
        text = _WORDS[key][self.lang]
        return text.format(**kw) if kw else text

    def metric_name(self, metric: str, title: str | None = None) -> str:
        """A metric's plain name; a custom metric's title (or its identifier)."""
        if metric in METRICS:
            return METRICS[metric][self.lang][0]
        return title or metric.replace("_", " ")

    def metric_definition(self, metric: str, title: str | None = None) -> str:
        """What a metric counts, in one sentence."""
        if metric in METRICS:
            return METRICS[metric][self.lang][1]
        return title or ""

    # -- numbers ----------------------------------------------------------------------------
    def num(self, v: float | None, digits: int = 0) -> str:
        """``12,345.6`` in English, ``12.345,6`` in Vietnamese; ``—`` for no value."""
        if v is None or (isinstance(v, float) and not math.isfinite(v)):
            return "—"
        s = f"{v:,.{digits}f}"
        if self.lang == "vi":
            s = s.replace(",", "\x00").replace(".", ",").replace("\x00", ".")
        return s

    def pct(self, v: float | None, digits: int = 1) -> str:
        """A fraction as a percentage."""
        return "—" if v is None else self.num(v * 100, digits) + "%"

    def duration(self, s: float | None) -> str:
        """Seconds as ``1h 05m`` (``1 giờ 05 phút`` in Vietnamese)."""
        out = fmt_duration(s)
        if self.lang != "vi":
            return out
        units = {"d": " ngày", "h": " giờ", "m": " phút", "s": " giây"}
        parts = []
        for part in out.split():
            m = _UNIT.fullmatch(part)
            parts.append(f"{m.group(1)}{int(m.group(2))}{units[m.group(3)]}" if m else part)
        return " ".join(parts)

    def value(self, metric: str, v: float | None, kind: str | None = None) -> str:
        """A metric value in its unit: shares as %, NPS in points, times as durations."""
        if v is None:
            return "—"
        k = kind or KIND.get(metric, "custom")
        if k in ("share", "ratio"):
            return self.pct(v)
        if k == "nps":
            return ("+" if v > 0 else "") + self.num(v, 1)
        if k == "time":
            return self.duration(v)
        if k == "count":
            return self.num(v)
        return self.num(v, 2)

    # -- dates ------------------------------------------------------------------------------
    def day(self, d: str | date | None) -> str:
        """A local date, readable: ``Mon 18 Jan 2027`` / ``T2, 18/01/2027``."""
        if d is None:
            return "—"
        if isinstance(d, str):
            d = date.fromisoformat(d[:10])
        wd = _WEEKDAYS[self.lang][d.weekday()]
        if self.lang == "vi":
            return f"{wd}, {d.day:02d}/{d.month:02d}/{d.year}"
        return f"{wd} {d.day} {_MONTHS[d.month - 1]} {d.year}"

    def short_day(self, d: str | date) -> str:
        """A date on an axis: ``18 Jan`` / ``18/01``."""
        if isinstance(d, str):
            d = date.fromisoformat(d[:10])
        if self.lang == "vi":
            return f"{d.day:02d}/{d.month:02d}"
        return f"{d.day} {_MONTHS[d.month - 1]}"

    def instant(self, iso: str | None) -> str:
        """An ISO instant with offset, in its own (the playbook's) local time."""
        if not iso:
            return "—"
        t = datetime.fromisoformat(iso)
        return f"{self.day(t.date())}, {t:%H:%M}"
