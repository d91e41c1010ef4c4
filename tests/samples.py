"""Sample queries and documents shared by tests."""

QUERY = "how do I reset the admin password of a Huawei router"
DOCUMENTS = [
    "Huawei router forgot password: three ways to recover it, with pictures.",
    "Huawei AX3 Pro router detailed specifications table.",
    "Router WAN port settings: frequently asked questions.",
    "如何重置华为路由器管理员密码？长按复位键十秒钟。",
    "ルーターの管理者パスワードをリセットする方法。",
    "",
    "Tesla Model Y winter range drops at minus twenty degrees. " * 3,
]
