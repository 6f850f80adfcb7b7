"""Conversations and the follow-ups that depend on them, for data/generate.py.

DIALOGS[name][lang] is a list of (role, text) turns with slots. FOLLOW_UPS are
(name, complexity, category, requires_context, dialog, phrasings): the same short text can
carry different labels after different dialogs ("what would you suggest?" after a plan
question is moderate, after a negotiation complex), which is why the classifier reads history.
"""

S, M, C = "simple", "moderate", "complex"
T, A, R = "transactional", "analytical", "creative"

DIALOGS = {
    "stock": {
        "en": [("user", "do you have the {product} in {color}?"), ("assistant", "Yes, the {product} is in stock in {color}, sizes S to L.")],
        "es": [("user", "¿tienen la {product} en {color}?"), ("assistant", "Sí, la {product} está disponible en {color}, tallas S a L.")],
        "pt": [("user", "vocês têm o {product} em {color}?"), ("assistant", "Sim, o {product} está disponível em {color}, tamanhos P a G.")],
    },
    "price": {
        "en": [("user", "how much is the {product}?"), ("assistant", "The {product} is {amount_small}, shipping included.")],
        "es": [("user", "¿cuánto cuesta la {product}?"), ("assistant", "La {product} cuesta {amount_small}, envío incluido.")],
        "pt": [("user", "quanto custa o {product}?"), ("assistant", "O {product} custa {amount_small}, com frete incluso.")],
    },
    "hours": {
        "en": [("user", "what time does the {city} store open?"), ("assistant", "The {city} store opens at 9am and closes at 8pm on weekdays.")],
        "es": [("user", "¿a qué hora abre la tienda de {city}?"), ("assistant", "La tienda de {city} abre a las 9 y cierra a las 20 entre semana.")],
        "pt": [("user", "que horas abre a loja de {city}?"), ("assistant", "A loja de {city} abre às 9h e fecha às 20h durante a semana.")],
    },
    "order": {
        "en": [("user", "where is my order {order}?"), ("assistant", "Order {order} left our warehouse yesterday and should arrive in 2 days.")],
        "es": [("user", "¿dónde está mi pedido {order}?"), ("assistant", "El pedido {order} salió ayer del almacén y llegará en 2 días.")],
        "pt": [("user", "onde está meu pedido {order}?"), ("assistant", "O pedido {order} saiu ontem do armazém e chega em 2 dias.")],
    },
    "plans": {
        "en": [("user", "what's included in the {plan_a} and {plan_b} plans?"), ("assistant", "{plan_a} covers 3 users and basic reports; {plan_b} adds unlimited users, API access and priority support for twice the price.")],
        "es": [("user", "¿qué incluyen los planes {plan_a} y {plan_b}?"), ("assistant", "{plan_a} cubre 3 usuarios e informes básicos; {plan_b} añade usuarios ilimitados, API y soporte prioritario por el doble de precio.")],
        "pt": [("user", "o que inclui os planos {plan_a} e {plan_b}?"), ("assistant", "O {plan_a} cobre 3 usuários e relatórios básicos; o {plan_b} adiciona usuários ilimitados, API e suporte prioritário pelo dobro do preço.")],
    },
    "negotiation": {
        "en": [("user", "We've bought {qty} units a quarter from you since 2021, about {amount_big} last year alone."),
               ("assistant", "Thank you, you're one of our top accounts. Our standard volume discount at that level is 8%."),
               ("user", "{competitor} quoted us {pct}% below your list price, with net-60 payment terms."),
               ("assistant", "Our policy allows up to 12% for multi-year commitments, and net-45 for accounts in good standing.")],
        "es": [("user", "Les compramos {qty} unidades por trimestre desde 2021, unos {amount_big} solo el año pasado."),
               ("assistant", "Gracias, son una de nuestras cuentas principales. El descuento estándar por volumen es del 8%."),
               ("user", "{competitor} nos ofrece un {pct}% menos que su precio de lista y pago a 60 días."),
               ("assistant", "Nuestra política permite hasta un 12% con compromiso plurianual y pago a 45 días.")],
        "pt": [("user", "Compramos {qty} unidades por trimestre desde 2021, cerca de {amount_big} só no ano passado."),
               ("assistant", "Obrigado, vocês estão entre nossas maiores contas. O desconto padrão por volume é de 8%."),
               ("user", "A {competitor} ofereceu {pct}% abaixo do seu preço de tabela, com prazo de 60 dias."),
               ("assistant", "Nossa política permite até 12% com compromisso de vários anos e prazo de 45 dias.")],
    },
    "contract": {
        "en": [("user", "We're reviewing the reseller agreement from {competitor}. Clause 7 caps their liability at one month of fees."),
               ("assistant", "A one-month cap is low; typical caps are 12 months of fees, with carve-outs for data breaches and IP infringement."),
               ("user", "Clause 12 also lets them change prices with 15 days' notice.")],
        "es": [("user", "Estamos revisando el contrato de distribución de {competitor}. La cláusula 7 limita su responsabilidad a un mes de cuotas."),
               ("assistant", "Es un límite bajo; lo habitual son 12 meses, con excepciones para brechas de datos y propiedad intelectual."),
               ("user", "La cláusula 12 además les permite cambiar precios con 15 días de aviso.")],
        "pt": [("user", "Estamos revisando o contrato de revenda da {competitor}. A cláusula 7 limita a responsabilidade deles a um mês de mensalidade."),
               ("assistant", "É um limite baixo; o comum são 12 meses, com exceções para vazamento de dados e propriedade intelectual."),
               ("user", "A cláusula 12 ainda permite reajustar preços com 15 dias de aviso.")],
    },
    "troubleshoot": {
        "en": [("user", "{issue}"), ("assistant", "Sorry about that! Could you try updating the app and restarting your phone?")],
        "es": [("user", "{issue}"), ("assistant", "¡Lo siento! ¿Puedes actualizar la app y reiniciar el teléfono?")],
        "pt": [("user", "{issue}"), ("assistant", "Poxa, desculpe! Pode atualizar o app e reiniciar o celular?")],
    },
    "cancel": {
        "en": [("user", "I might want to cancel order {order}"), ("assistant", "I can cancel order {order} for you now since it hasn't shipped. Shall I go ahead?")],
        "es": [("user", "creo que quiero cancelar el pedido {order}"), ("assistant", "Puedo cancelar el pedido {order} ahora porque aún no ha salido. ¿Lo hago?")],
        "pt": [("user", "acho que quero cancelar o pedido {order}"), ("assistant", "Posso cancelar o pedido {order} agora, ele ainda não foi enviado. Quer que eu cancele?")],
    },
    "campaign": {
        "en": [("user", "We're launching {brand}'s summer line for {audience} next month."), ("assistant", "Great! What channels are you planning to use, and what's the tone of the brand?"),
               ("user", "Instagram and email. The tone is warm, a bit cheeky, never salesy.")],
        "es": [("user", "Lanzamos la línea de verano de {brand} para {audience} el mes que viene."), ("assistant", "¡Genial! ¿Qué canales usarán y cuál es el tono de la marca?"),
               ("user", "Instagram y email. El tono es cercano, algo pícaro, nunca comercial.")],
        "pt": [("user", "Vamos lançar a linha de verão da {brand} para {audience} no mês que vem."), ("assistant", "Ótimo! Quais canais vocês vão usar e qual é o tom da marca?"),
               ("user", "Instagram e e-mail. O tom é acolhedor, meio irreverente, nunca vendedor.")],
    },
}

FOLLOW_UPS = [
    ("fu_stock", S, T, True, "stock", {
        "en": ["and the red one?", "what about in {size}?", "and in {color}?", "ok, and the other one?", "is that one also on sale?"],
        "es": ["¿y la roja?", "¿y en talla {size}?", "¿y en {color}?", "¿y la otra?"],
        "pt": ["e a vermelha?", "e no tamanho {size}?", "e em {color}?", "e o outro?"],
    }),
    ("fu_price", S, T, True, "price", {
        "en": ["what about for 2 of them?", "and with express shipping?", "is that the price with tax?", "and for {n}?"],
        "es": ["¿y si compro 2?", "¿y con envío urgente?", "¿ese precio incluye IVA?", "¿y por {n}?"],
        "pt": ["e se eu levar 2?", "e com frete expresso?", "esse preço já tem imposto?", "e para {n}?"],
    }),
    ("fu_hours", S, T, True, "hours", {
        "en": ["and on {day}?", "what about weekends?", "same for the other store?"],
        "es": ["¿y {day}?", "¿y el sábado?", "¿y los fines de semana?", "¿lo mismo en la otra tienda?"],
        "pt": ["e {day}?", "e no sábado?", "e nos fins de semana?", "mesma coisa na outra loja?"],
    }),
    ("fu_order", S, T, True, "order", {
        "en": ["and my other order?", "can you send me the tracking for it?", "can it arrive by {day}?", "ok, to which address?"],
        "es": ["¿y mi otro pedido?", "¿me mandas el seguimiento?", "¿puede llegar antes de {day}?"],
        "pt": ["e o meu outro pedido?", "me manda o rastreio dele?", "consegue chegar até {day}?"],
    }),
    ("fu_cancel_yes", S, T, True, "cancel", {
        "en": ["yes please", "yes, go ahead", "ok do it"],
        "es": ["sí, por favor", "sí, adelante", "vale, hazlo"],
        "pt": ["sim, por favor", "pode cancelar", "ok, faz isso"],
    }),
    ("fu_plans", M, A, True, "plans", {
        "en": ["so which one should I pick for a team of {n}?", "ok, what would you suggest?", "why is {plan_b} so much more expensive?",
               "can you explain that API part?"],
        "es": ["entonces, ¿cuál me conviene para un equipo de {n}?", "vale, ¿qué me recomiendas?", "¿por qué {plan_b} es tan caro?"],
        "pt": ["então, qual compensa para uma equipe de {n}?", "ok, o que você sugere?", "por que o {plan_b} é tão mais caro?"],
    }),
    ("fu_troubleshoot", M, A, True, "troubleshoot", {
        "en": ["I did that and it still happens", "tried that already, what else?", "it worked for a day and now it's back"],
        "es": ["ya lo hice y sigue pasando", "eso ya lo probé, ¿qué más?"],
        "pt": ["já fiz isso e continua", "já tentei isso, o que mais?"],
    }),
    ("fu_negotiation", C, A, True, "negotiation", {
        "en": ["given everything above, what's the best offer?", "ok, what would you suggest?", "considering all that, can you do better than 12%?",
               "so what's your final offer with net-60?", "based on everything we discussed, draft the terms you'd accept"],
        "es": ["teniendo en cuenta todo lo anterior, ¿cuál es la mejor oferta?", "vale, ¿qué me sugieres?", "con todo eso, ¿pueden mejorar el 12%?",
               "entonces, ¿cuál es su oferta final con pago a 60 días?"],
        "pt": ["considerando tudo isso, qual é a melhor oferta?", "ok, o que você sugere?", "com base em tudo, vocês conseguem melhorar os 12%?",
               "então, qual a proposta final com prazo de 60 dias?"],
    }),
    ("fu_contract", C, A, True, "contract", {
        "en": ["given all that, should we sign it?", "how do clauses 7 and 12 interact, and what should we redline?", "what would you push back on first?"],
        "es": ["con todo eso, ¿firmamos?", "¿cómo se combinan las cláusulas 7 y 12 y qué deberíamos cambiar?"],
        "pt": ["com tudo isso, devemos assinar?", "como as cláusulas 7 e 12 se combinam e o que devemos mudar?"],
    }),
    ("fu_campaign", C, R, True, "campaign", {
        "en": ["great, now write {n_big} caption variations in that voice", "ok, draft the full email sequence based on that", "write the copy for all of it"],
        "es": ["genial, ahora escribe {n_big} variaciones de textos con ese tono", "vale, redacta toda la secuencia de emails con eso"],
        "pt": ["ótimo, agora escreva {n_big} variações de legenda nesse tom", "ok, redija toda a sequência de e-mails com base nisso"],
    }),
]

# Follow-ups seen without their conversation (the caller sent none): still need context.
ORPHANS = [
    ("orphan_fu", S, T, True, {
        "en": ["and the blue one?", "what about for 3 of them?", "and tomorrow?"],
        "es": ["¿y el sábado?", "¿y la azul?", "¿y para 3?"],
        "pt": ["e amanhã?", "e a azul?", "e para 3?"],
    }),
]
