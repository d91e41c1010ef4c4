"""Regenerate ``corpus.jsonl``: 300 support documents, 10 products x 5 languages x 6 kinds.

Deterministic (no randomness), so tests can name the documents each rule must drop.
Run: ``python examples/funnel/make_corpus.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

# product, official domain, then per language: (problem, fix)
TOPICS = [
    (
        "iPhone 15",
        "support.apple.com",
        {
            "en": (
                "charges slowly",
                "use a 20W USB-C power adapter, try another cable, remove the case so the phone stays cool, and update iOS",
            ),
            "zh": (
                "充电慢",
                "使用20W USB-C电源适配器，更换数据线，取下保护壳避免发热，并更新iOS系统",
            ),
            "fr": (
                "se charge lentement",
                "utilisez un adaptateur secteur USB-C de 20 W, essayez un autre câble, retirez la coque et mettez à jour iOS",
            ),
            "es": (
                "carga lentamente",
                "use un adaptador de corriente USB-C de 20 W, pruebe otro cable, quite la funda y actualice iOS",
            ),
            "de": (
                "lädt langsam",
                "verwenden Sie ein 20-W-USB-C-Netzteil, probieren Sie ein anderes Kabel, nehmen Sie die Hülle ab und aktualisieren Sie iOS",
            ),
        },
    ),
    (
        "Huawei AX3 router",
        "consumer.huawei.com",
        {
            "en": (
                "forgot the admin password",
                "hold the reset button for ten seconds, then log in at 192.168.3.1 and set a new password",
            ),
            "zh": (
                "忘记管理员密码",
                "长按复位键十秒钟，然后登录192.168.3.1网页管理界面并设置新密码",
            ),
            "fr": (
                "mot de passe administrateur oublié",
                "maintenez le bouton de réinitialisation dix secondes puis connectez-vous à 192.168.3.1",
            ),
            "es": (
                "olvidó la contraseña de administrador",
                "mantenga pulsado el botón de reinicio diez segundos y entre en 192.168.3.1",
            ),
            "de": (
                "Administratorpasswort vergessen",
                "halten Sie die Reset-Taste zehn Sekunden gedrückt und melden Sie sich unter 192.168.3.1 an",
            ),
        },
    ),
    (
        "Tesla Model Y",
        "tesla.com",
        {
            "en": (
                "loses range in winter",
                "precondition the battery while plugged in, use scheduled departure and keep the tyres inflated",
            ),
            "zh": ("冬季续航缩水", "插电时预热电池，使用预约出发功能，并保持轮胎气压正常"),
            "fr": (
                "perd de l'autonomie en hiver",
                "préconditionnez la batterie branchée, utilisez le départ programmé et gonflez les pneus",
            ),
            "es": (
                "pierde autonomía en invierno",
                "preacondicione la batería enchufada, use la salida programada y revise la presión de los neumáticos",
            ),
            "de": (
                "verliert im Winter Reichweite",
                "konditionieren Sie die Batterie am Ladekabel vor, nutzen Sie die geplante Abfahrt und prüfen Sie den Reifendruck",
            ),
        },
    ),
    (
        "Sony WH-1000XM5 headphones",
        "sony.com",
        {
            "en": (
                "noise cancelling is weak",
                "update the firmware in the Sony Headphones Connect app and reseat the ear pads",
            ),
            "zh": ("降噪效果变弱", "在Sony Headphones Connect应用中更新固件，并重新安装耳垫"),
            "fr": (
                "la réduction de bruit est faible",
                "mettez à jour le micrologiciel dans l'application Sony Headphones Connect et replacez les coussinets",
            ),
            "es": (
                "la cancelación de ruido es débil",
                "actualice el firmware en la aplicación Sony Headphones Connect y vuelva a colocar las almohadillas",
            ),
            "de": (
                "die Geräuschunterdrückung ist schwach",
                "aktualisieren Sie die Firmware in der App Sony Headphones Connect und setzen Sie die Ohrpolster neu ein",
            ),
        },
    ),
    (
        "Windows 11 laptop",
        "support.microsoft.com",
        {
            "en": (
                "Wi-Fi keeps disconnecting",
                "update the network adapter driver and turn off power saving for the wireless adapter",
            ),
            "zh": ("Wi-Fi频繁断开", "更新网卡驱动程序，并关闭无线网卡的节能模式"),
            "fr": (
                "le Wi-Fi se déconnecte sans cesse",
                "mettez à jour le pilote de la carte réseau et désactivez l'économie d'énergie de l'adaptateur sans fil",
            ),
            "es": (
                "el Wi-Fi se desconecta continuamente",
                "actualice el controlador del adaptador de red y desactive el ahorro de energía del adaptador inalámbrico",
            ),
            "de": (
                "das WLAN trennt ständig die Verbindung",
                "aktualisieren Sie den Netzwerktreiber und deaktivieren Sie den Energiesparmodus des WLAN-Adapters",
            ),
        },
    ),
    (
        "Canon PIXMA printer",
        "canon.com",
        {
            "en": (
                "has a paper jam",
                "open the rear cover, pull the paper out slowly with both hands and clean the feed rollers",
            ),
            "zh": ("卡纸", "打开后盖，用双手慢慢拉出纸张，并清洁进纸滚轮"),
            "fr": (
                "a un bourrage papier",
                "ouvrez le capot arrière, retirez lentement le papier à deux mains et nettoyez les rouleaux",
            ),
            "es": (
                "tiene un atasco de papel",
                "abra la cubierta trasera, saque el papel despacio con ambas manos y limpie los rodillos",
            ),
            "de": (
                "hat einen Papierstau",
                "öffnen Sie die hintere Abdeckung, ziehen Sie das Papier langsam heraus und reinigen Sie die Einzugsrollen",
            ),
        },
    ),
    (
        "Samsung Galaxy S24",
        "samsung.com",
        {
            "en": (
                "battery drains fast",
                "turn off Always On Display, check battery usage per app and enable adaptive battery",
            ),
            "zh": ("电池耗电快", "关闭息屏显示，查看各应用耗电情况，并开启自适应电池"),
            "fr": (
                "la batterie se vide vite",
                "désactivez l'affichage Always On, vérifiez la consommation par application et activez la batterie adaptative",
            ),
            "es": (
                "la batería se agota rápido",
                "desactive Always On Display, revise el consumo por aplicación y active la batería adaptable",
            ),
            "de": (
                "der Akku entlädt sich schnell",
                "deaktivieren Sie Always On Display, prüfen Sie den Akkuverbrauch pro App und aktivieren Sie den adaptiven Akku",
            ),
        },
    ),
    (
        "Nintendo Switch",
        "nintendo.com",
        {
            "en": (
                "Joy-Con drift",
                "calibrate the control sticks in System Settings and update the controllers",
            ),
            "zh": ("Joy-Con摇杆漂移", "在系统设置中校准摇杆，并更新手柄固件"),
            "fr": (
                "dérive des Joy-Con",
                "calibrez les sticks dans les paramètres de la console et mettez à jour les manettes",
            ),
            "es": (
                "deriva de los Joy-Con",
                "calibre las palancas en la configuración de la consola y actualice los mandos",
            ),
            "de": (
                "Joy-Con-Drift",
                "kalibrieren Sie die Control-Sticks in den Systemeinstellungen und aktualisieren Sie die Controller",
            ),
        },
    ),
    (
        "Dyson V15 vacuum",
        "dyson.com",
        {
            "en": (
                "loses suction",
                "wash the filter, let it dry for 24 hours and clear blockages in the wand",
            ),
            "zh": ("吸力下降", "清洗滤网并晾干24小时，然后清除吸管中的堵塞物"),
            "fr": (
                "perd de l'aspiration",
                "lavez le filtre, laissez-le sécher 24 heures et débouchez le tube",
            ),
            "es": (
                "pierde succión",
                "lave el filtro, déjelo secar 24 horas y elimine las obstrucciones del tubo",
            ),
            "de": (
                "verliert Saugkraft",
                "waschen Sie den Filter, lassen Sie ihn 24 Stunden trocknen und entfernen Sie Verstopfungen im Rohr",
            ),
        },
    ),
    (
        "PlayStation 5",
        "playstation.com",
        {
            "en": (
                "overheats",
                "keep the vents clear, remove dust with a vacuum and leave space around the console",
            ),
            "zh": ("过热", "保持通风口畅通，用吸尘器清除灰尘，并在主机周围留出空间"),
            "fr": (
                "surchauffe",
                "dégagez les aérations, retirez la poussière avec un aspirateur et laissez de l'espace autour de la console",
            ),
            "es": (
                "se sobrecalienta",
                "mantenga libres las rejillas, quite el polvo con una aspiradora y deje espacio alrededor de la consola",
            ),
            "de": (
                "überhitzt",
                "halten Sie die Lüftungsöffnungen frei, entfernen Sie Staub mit einem Staubsauger und lassen Sie Platz um die Konsole",
            ),
        },
    ),
]

# kind -> per language: (title, body); {p} product, {q} problem, {f} fix
KINDS = {
    "guide": {
        "en": (
            "If your {p} {q}",
            "Official support article. If your {p} {q}, {f}. Contact support if the problem continues.",
        ),
        "zh": (
            "{p}{q}怎么办",
            "官方支持文章。如果您的{p}{q}，请{f}。如果问题仍然存在，请联系客服。",
        ),
        "fr": (
            "Si votre {p} : {q}",
            "Article d'assistance officiel. Si votre {p} {q}, {f}. Contactez l'assistance si le problème persiste.",
        ),
        "es": (
            "Si su {p} {q}",
            "Artículo de soporte oficial. Si su {p} {q}, {f}. Contacte con soporte si el problema continúa.",
        ),
        "de": (
            "Wenn Ihr {p}: {q}",
            "Offizieller Support-Artikel. Wenn Ihr {p} {q}, {f}. Wenden Sie sich an den Support, wenn das Problem bleibt.",
        ),
    },
    "forum": {
        "en": (
            "Forum: my {p} {q}",
            "Community thread. A user wrote that the {p} {q} since last week. Another member answered: {f}. It worked for me.",
        ),
        "zh": (
            "论坛：我的{p}{q}",
            "社区讨论。一位用户说上周开始{p}{q}。另一位网友回答：{f}。这个方法对我有效。",
        ),
        "fr": (
            "Forum : mon {p} {q}",
            "Discussion communautaire. Un utilisateur écrit que son {p} {q} depuis la semaine dernière. Réponse : {f}.",
        ),
        "es": (
            "Foro: mi {p} {q}",
            "Hilo de la comunidad. Un usuario escribió que su {p} {q} desde la semana pasada. Respuesta: {f}.",
        ),
        "de": (
            "Forum: mein {p} {q}",
            "Community-Thread. Ein Nutzer schrieb, dass sein {p} seit letzter Woche {q}. Antwort: {f}.",
        ),
    },
    "archive": {
        "en": (
            "Archived: {p} {q} (old firmware)",
            "Archived support article for an old firmware version. When the {p} {q}, {f}.",
        ),
        "zh": ("归档：{p}{q}（旧版固件）", "旧版固件的归档支持文章。当{p}{q}时，请{f}。"),
        "fr": (
            "Archive : {p} {q} (ancien firmware)",
            "Article archivé pour un ancien firmware. Quand le {p} {q}, {f}.",
        ),
        "es": (
            "Archivo: {p} {q} (firmware antiguo)",
            "Artículo archivado para un firmware antiguo. Cuando el {p} {q}, {f}.",
        ),
        "de": (
            "Archiv: {p} {q} (alte Firmware)",
            "Archivierter Artikel für eine alte Firmware. Wenn das {p} {q}, {f}.",
        ),
    },
    "news": {
        "en": (
            "News: reports that the {p} {q}",
            "Tech news. Owners report that the {p} {q}. The manufacturer has not commented on a fix yet.",
        ),
        "zh": (
            "新闻：用户反映{p}{q}",
            "科技新闻。多位用户反映{p}{q}。厂商尚未就解决方案发表评论。",
        ),
        "fr": (
            "Actualité : le {p} {q}",
            "Actualité tech. Des propriétaires signalent que le {p} {q}. Le fabricant n'a pas encore réagi.",
        ),
        "es": (
            "Noticias: el {p} {q}",
            "Noticias tecnológicas. Los usuarios informan que el {p} {q}. El fabricante aún no ha comentado.",
        ),
        "de": (
            "News: {p} {q}",
            "Tech-News. Besitzer berichten, dass das {p} {q}. Der Hersteller hat sich noch nicht geäußert.",
        ),
    },
    "faq": {
        "en": (
            "{p} FAQ",
            "Frequently asked questions about the {p}: warranty, accessories, setup and what to do when it {q}.",
        ),
        "zh": ("{p}常见问题", "关于{p}的常见问题：保修、配件、设置，以及{q}时该怎么办。"),
        "fr": (
            "FAQ {p}",
            "Questions fréquentes sur le {p} : garantie, accessoires, installation et que faire quand il {q}.",
        ),
        "es": (
            "Preguntas frecuentes {p}",
            "Preguntas frecuentes sobre el {p}: garantía, accesorios, configuración y qué hacer cuando {q}.",
        ),
        "de": (
            "{p} FAQ",
            "Häufige Fragen zum {p}: Garantie, Zubehör, Einrichtung und was zu tun ist, wenn es {q}.",
        ),
    },
}
# the mirror copies the guide word for word: a near-duplicate from a non-official source
MIRROR = "mirror"
DATES = {
    "guide": "2025-06-01",
    "forum": "2025-09-15",
    "archive": "2019-03-01",
    "news": "2025-11-20",
    "faq": "2024-12-01",
    MIRROR: "2025-07-01",
}


def documents() -> list[dict[str, object]]:
    """Every document, in a fixed order."""
    docs: list[dict[str, object]] = []
    for t, (product, domain, phrases) in enumerate(TOPICS):
        for lang, (problem, fix) in phrases.items():
            for kind, per_lang in [*KINDS.items(), (MIRROR, KINDS["guide"])]:
                title, body = per_lang[lang]
                source = {
                    "guide": f"https://{domain}/{lang}/help",
                    "archive": f"https://{domain}/{lang}/archive",
                    "faq": f"https://{domain}/{lang}/faq",
                    "forum": "https://forum.techfans.example",
                    "news": "https://news.gadgets.example",
                    MIRROR: "https://copycat.example",
                }[kind]
                docs.append(
                    {
                        "id": f"t{t:02d}-{lang}-{kind}",
                        "title": title.format(p=product, q=problem),
                        "text": body.format(p=product, q=problem, f=fix),
                        "source": source,
                        "published": DATES[kind],
                        "lang": lang,
                        "kind": kind,
                        "product": product,
                    }
                )
    return docs


if __name__ == "__main__":
    out = Path(__file__).with_name("corpus.jsonl")
    with out.open("w", encoding="utf-8") as stream:
        for doc in documents():
            stream.write(json.dumps(doc, ensure_ascii=False) + "\n")
    print(f"wrote {len(documents())} documents to {out}")
