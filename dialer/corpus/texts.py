"""What the calls of a corpus say: announcements per class, people's greetings, voicemail greetings
(personal and operators' services), call-screening assistants, organisations' IVR and queue
prompts. Pure data.

In a text, ``|`` ends the discriminating prefix: the class is knowable once the words before the
mark are heard (absent = the whole text). For a person, the class is knowable when the greeting
ends. ``/`` marks an inner pause the speaker makes (rendered as silence of a drawn length).
"""

from __future__ import annotations

from dialer.domain.model import CallClass

DISC_MARK = "|"
PAUSE_MARK = "/"

# the announcements Russian networks play, by class (their rules: docs/rules.md §2, §3)
ANNOUNCEMENTS: dict[CallClass, tuple[str, ...]] = {
    CallClass.ANN_TEMPORARILY_UNAVAILABLE: (
        "абонент временно недоступен | попробуйте позвонить позже",
        "абонент временно недоступен | пожалуйста позвоните позднее",
        "абонент не отвечает или временно недоступен | пожалуйста позвоните позднее",
        "номер на который вы звоните сейчас не в сети | пожалуйста перезвоните позже",
        "вызываемый абонент временно недоступен",
        "телефон абонента временно недоступен | позвоните позже",
    ),
    CallClass.ANN_SWITCHED_OFF: (
        "аппарат абонента выключен | или находится вне зоны действия сети",
        "телефон абонента выключен | или находится вне зоны обслуживания",
        "абонент выключен | или находится вне зоны действия сети",
    ),
    CallClass.ANN_NOT_REGISTERED: (
        "абонент в сети не зарегистрирован",
        "абонент не зарегистрирован | в сети",
    ),
    CallClass.ANN_ABROAD: ("абонент которому вы позвонили находится за пределами | российской федерации",),
    CallClass.ANN_SUSPENDED: (
        "обслуживание абонента временно приостановлено",
        "обслуживание номера временно приостановлено",
    ),
    CallClass.ANN_TEMPORARILY_BLOCKED: (
        "извините набранный вами номер временно заблокирован",
        "номер временно заблокирован",
    ),
    CallClass.ANN_SERVICE_NOT_AVAILABLE: ("данный вид связи недоступен | для абонента",),
    CallClass.ANN_CONNECTION_IMPOSSIBLE: (
        "соединение невозможно",
        "абонент не отвечает на звонки | с неопределяемых номеров",
    ),
    CallClass.ANN_NETWORK_CONGESTED: ("направление перегружено",),
    CallClass.ANN_SUBSCRIBER_BUSY: (
        "абонент разговаривает | дождитесь ответа или перезвоните позже",
        "абонент занят | оставайтесь на линии или перезвоните",
    ),
    CallClass.ANN_STILL_TRYING: ("продолжается попытка дозвониться | до абонента который пока что не успел ответить",),
    CallClass.ANN_NOT_IN_SERVICE: (
        "набранный вами номер не обслуживается",
        "набранный вами номер не используется | пожалуйста уточните номер",
        "номер не обслуживается | или не используется",
        "набранный номер не может быть вызван",
    ),
    CallClass.ANN_DOES_NOT_EXIST: (
        "извините номер не существует | или набран неправильно",
        "набираемый номер не существует",
        "номер который вы набрали не существует",
        "вы набрали несуществующий | формат номера",
    ),
    CallClass.ANN_WRONG_NUMBER: ("неправильно набран номер", "номер набран неправильно"),
    CallClass.ANN_BLOCKED: ("номер заблокирован", "абонент заблокирован"),
    CallClass.ANN_DISCONNECTED: (
        "извините вызываемый вами абонент отключён | оператором",
        "предоставление услуг по этому номеру прекращено",
        "доступ к данному номеру запрещён",
        "номер отключён",
    ),
    CallClass.ANN_FOR_SALE: (
        "вы позвонили на номер который находится в продаже",
        "номер телефона доступен | для приобретения",
        "здравствуйте сейчас этот номер свободен",
    ),
    CallClass.ANN_NUMBER_CHANGED: (
        "номер изменён",
        "номер абонента изменился",
        "в настоящее время вызов абоненту который сменил оператора | связи невозможен",
    ),
}

# What networks say after the Russian text (spoken by an English voice).
ENGLISH_TAILS: dict[CallClass, str] = {
    CallClass.ANN_TEMPORARILY_UNAVAILABLE: "the subscriber is not available now please call later",
    CallClass.ANN_SWITCHED_OFF: "the subscriber is switched off or out of the coverage area",
    CallClass.ANN_NOT_REGISTERED: "the subscriber is not registered in the network",
    CallClass.ANN_SUSPENDED: "the service for this number is temporarily suspended",
    CallClass.ANN_TEMPORARILY_BLOCKED: "the number you have dialled is temporarily blocked",
    CallClass.ANN_SUBSCRIBER_BUSY: "the subscriber is busy please hold the line or call later",
    CallClass.ANN_NOT_IN_SERVICE: "the number you have dialled is not in service",
    CallClass.ANN_DOES_NOT_EXIST: "the number you have dialled does not exist",
    CallClass.ANN_WRONG_NUMBER: "the number you have dialled is wrong",
    CallClass.ANN_BLOCKED: "the number you have dialled is blocked",
    CallClass.ANN_DISCONNECTED: "the subscriber has been disconnected",
}

# People answering: from a bare «Да?» to a greeting of several seconds with pauses («/»).
PERSON_GREETINGS: tuple[str, ...] = (
    "да",
    "алло",
    "слушаю",
    "да слушаю",
    "алло слушаю",
    "алло здравствуйте",
    "слушаю вас",
    "алло / алло",
    "да / говорите",
    "алло / кто это",
    "алло здравствуйте / я вас слушаю",
    "добрый день / слушаю вас",
    "алло / да / слушаю",
    "да алло / кто звонит",
    "здравствуйте / а кто это / говорите пожалуйста",
    "алло / алло / вас не слышно",
)
# A person who says something after the greeting (a question).
PERSON_QUESTIONS: tuple[str, ...] = ("кто это", "вы по какому вопросу", "что вы хотели", "откуда у вас мой номер")

VOICEMAIL_GREETINGS: tuple[str, ...] = (
    "вас приветствует автоответчик | оставьте сообщение после звукового сигнала",
    "вызываемый абонент недоступен ваш звонок был переадресован на голосовой почтовый ящик",
    "здравствуйте вы позвонили ивану сейчас я не могу ответить оставьте сообщение | после сигнала",
    "добрый день к сожалению я не могу подойти к телефону оставьте сообщение | после сигнала",
    "привет это марина / я сейчас занята / оставьте сообщение | и я перезвоню",
    "здравствуйте / вы позвонили в квартиру петровых / нас нет дома / говорите после сигнала",
)
# Operators' voicemail services (played by the network on the subscriber's behalf).
VOICEMAIL_SERVICES: tuple[str, ...] = (
    "абонент не может ответить | оставьте сообщение после сигнала",
    "абонент сейчас не может ответить на ваш звонок | оставьте голосовое сообщение",
    "ваш звонок переадресован на голосовую почту | оставьте сообщение после сигнала",
)
# Call-screening assistants: a machine asks who calls (no person yet).
CALL_SCREENING: tuple[str, ...] = (
    "здравствуйте я голосовой помощник | абонента представьтесь и скажите по какому вопросу вы звоните",
    "добрый день это автоответчик | помощник абонента пожалуйста назовите себя и цель звонка",
)

IVR_PROMPTS: tuple[str, ...] = (
    "здравствуйте вы позвонили в компанию ромашка наберите добавочный | номер или дождитесь ответа оператора",
    "для соединения с сотрудником наберите добавочный | номер",
    "ваш звонок очень важен для нас | оставайтесь на линии",
    "добро пожаловать наберите добавочный | номер или оставайтесь на линии",
    "все операторы заняты | пожалуйста оставайтесь на линии вам обязательно ответят",
    "здравствуйте / ваш звонок может быть записан | для связи с оператором нажмите ноль",
    "вы позвонили в сервисный центр / ожидайте ответа оператора | ваш звонок очень важен для нас",
)

# Texts mixed into babble noise (a crowd far off); any words will do.
BABBLE_TEXTS: tuple[str, ...] = (
    "сегодня мы поедем на дачу если не будет дождя",
    "он сказал что придёт к семи часам вечера",
    "в магазине закончился хлеб и молоко",
    "позвони маме она просила перезвонить",
    "завтра совещание в десять утра не опаздывай",
    "мы купили новый холодильник на прошлой неделе",
)
