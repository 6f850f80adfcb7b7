"""Slot values for data/generate.py, per language. Plain data, no logic."""

PRODUCTS = {
    "en": ["blue hoodie", "running shoes", "coffee maker", "wireless earbuds", "yoga mat", "leather wallet",
           "standing desk", "rain jacket", "phone case", "backpack", "desk lamp", "winter boots", "smart watch",
           "air fryer", "linen shirt", "gaming chair"],
    "es": ["sudadera azul", "zapatillas de correr", "cafetera", "auriculares inalámbricos", "esterilla de yoga",
           "cartera de cuero", "escritorio elevable", "chaqueta impermeable", "funda del móvil", "mochila",
           "lámpara de escritorio", "botas de invierno", "reloj inteligente", "freidora de aire", "camisa de lino"],
    "pt": ["moletom azul", "tênis de corrida", "cafeteira", "fones sem fio", "tapete de yoga", "carteira de couro",
           "mesa regulável", "jaqueta impermeável", "capinha do celular", "mochila", "luminária de mesa",
           "botas de inverno", "relógio inteligente", "fritadeira elétrica", "camisa de linho"],
}
THINGS = {
    "en": ["thing", "stuff", "package", "order", "delivery", "box", "purchase"],
    "es": ["cosa", "paquete", "pedido", "envío", "compra", "caja"],
    "pt": ["coisa", "pacote", "pedido", "encomenda", "compra", "caixa"],
}
COLORS = {
    "en": ["red", "black", "white", "green", "navy", "grey", "beige"],
    "es": ["rojo", "negro", "blanco", "verde", "azul marino", "gris", "beige"],
    "pt": ["vermelho", "preto", "branco", "verde", "azul-marinho", "cinza", "bege"],
}
SIZES = ["S", "M", "L", "XL", "38", "40", "42", "44"]
DAYS = {
    "en": ["Saturday", "Sunday", "Monday", "public holidays", "Christmas Eve", "Friday night"],
    "es": ["el sábado", "el domingo", "el lunes", "los festivos", "Nochebuena", "el viernes por la noche"],
    "pt": ["no sábado", "no domingo", "na segunda", "nos feriados", "na véspera de Natal", "na sexta à noite"],
}
CITIES = ["Madrid", "Lisbon", "São Paulo", "Mexico City", "Bogotá", "Porto", "Austin", "Buenos Aires", "Lima",
          "Miami", "Barcelona", "Rio", "Santiago", "Toronto"]
PLANS = [("Basic", "Plus"), ("Starter", "Pro"), ("Standard", "Premium"), ("monthly", "annual"), ("Lite", "Business"),
         ("Individual", "Family")]
PAYMENTS = {
    "en": ["PayPal", "Apple Pay", "a debit card", "bank transfer", "cash on delivery", "gift cards", "Amex"],
    "es": ["PayPal", "Bizum", "tarjeta de débito", "transferencia", "pago contra reembolso", "tarjeta regalo"],
    "pt": ["Pix", "boleto", "cartão de débito", "PayPal", "transferência", "vale-presente", "cartão de crédito"],
}
DRUGS = ["ibuprofen", "amoxicillin", "metformin", "sertraline", "warfarin", "paracetamol", "lisinopril",
         "omeprazole", "levothyroxine", "prednisone"]
COMPETITORS = ["ShopNow", "MegaMart", "Lojas Rio", "TodoCasa", "QuickBuy", "CasaFácil"]
BRANDS = ["Nimbus Coffee", "Verde Yoga", "Pixel Pets", "Andes Outdoor", "Lumen Lamps", "Sol & Mar Swimwear",
          "Brisa Skincare", "Kite Bikes"]
AUDIENCES = {
    "en": ["new parents", "college students", "runners", "small business owners", "retirees", "gamers"],
    "es": ["padres primerizos", "universitarios", "corredores", "pequeños empresarios", "jubilados"],
    "pt": ["pais de primeira viagem", "universitários", "corredores", "pequenos empresários", "aposentados"],
}
ISSUES = {
    "en": ["the app crashes when I open it", "I can't log in", "the printer won't connect to wifi",
           "my smart watch won't sync", "the coffee maker leaks", "the checkout page keeps loading",
           "my earbuds only play in one ear", "the discount code doesn't apply"],
    "es": ["la app se cierra al abrirla", "no puedo iniciar sesión", "la impresora no se conecta al wifi",
           "el reloj no sincroniza", "la cafetera gotea", "la página de pago no carga",
           "el código de descuento no funciona"],
    "pt": ["o app fecha quando abro", "não consigo entrar na conta", "a impressora não conecta no wifi",
           "o relógio não sincroniza", "a cafeteira está vazando", "a página de pagamento não carrega",
           "o cupom de desconto não funciona"],
}
CODE_SNIPPETS = [
    "def total(items):\n    return sum(i.price for i in items if i.active\n",
    "SELECT customer_id, SUM(amount) FROM orders WHERE created_at > now() - interval '30 days'",
    "for (let i = 0; i <= arr.length; i++) { total += arr[i].price }",
    "fn parse(s: &str) -> u32 { s.trim().parse().unwrap() }",
    "if user.plan == 'pro' and user.active = True:\n    grant_access(user)",
    "const res = await fetch(url); const data = res.json(); console.log(data.items)",
    "UPDATE users SET status = 'inactive' WHERE last_login < '2023-01-01'",
]
CODE_TASKS = {
    "en": ["a Python function that dedupes customer emails and keeps the newest record",
           "a SQL query that finds customers who ordered twice in the last 30 days",
           "a bash script that rotates our nginx logs and uploads them to object storage",
           "a JavaScript validator for Brazilian CPF numbers",
           "a regex that matches order ids like AB-12345 but not AB-1234",
           "a Rust function that parses our CSV export into structs",
           "unit tests for our discount calculation function"],
    "es": ["una función en Python que elimine correos duplicados de clientes",
           "una consulta SQL que encuentre clientes con dos pedidos en los últimos 30 días",
           "un script de bash que rote los logs de nginx",
           "un validador en JavaScript para números de RUT chilenos",
           "una expresión regular para números de pedido tipo AB-12345",
           "pruebas unitarias para la función que calcula descuentos"],
    "pt": ["uma função em Python que remova e-mails duplicados de clientes",
           "uma consulta SQL que encontre clientes com dois pedidos nos últimos 30 dias",
           "um script bash que faça rotação dos logs do nginx",
           "um validador em JavaScript para CPF",
           "uma expressão regular para códigos de pedido tipo AB-12345",
           "testes unitários para a função que calcula descontos"],
}
