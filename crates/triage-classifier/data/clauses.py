"""Contract clauses for the long-document examples of data/generate.py (written for this set)."""

CLAUSES = {
    "en": [
        "The Supplier shall indemnify and hold harmless the Customer against all losses arising from any breach of this Agreement, save that the Supplier's aggregate liability shall not exceed the fees paid in the twelve (12) months preceding the claim.",
        "Either party may terminate this Agreement for convenience on ninety (90) days' written notice, provided that any prepaid fees for the remainder of the term shall be non-refundable.",
        "The Customer grants the Supplier a non-exclusive, worldwide licence to use Customer Data solely to provide the Services and for no other purpose, including the training of machine learning models.",
        "Neither party shall be liable for indirect, incidental or consequential damages, including loss of profits, even if advised of the possibility of such damages.",
        "This Agreement renews automatically for successive twelve-month terms unless either party gives notice of non-renewal at least sixty (60) days before the end of the then-current term.",
        "The Supplier may increase the fees once per year by no more than the change in the consumer price index plus three percent (3%), with thirty days' notice.",
        "All disputes shall be settled by binding arbitration in the State of Delaware, and each party waives its right to a jury trial and to participate in a class action.",
        "The Supplier shall notify the Customer of any personal data breach without undue delay and in any event within seventy-two (72) hours of becoming aware of it.",
        "Service credits set out in Schedule 2 are the Customer's sole and exclusive remedy for any failure to meet the uptime commitment of 99.9% per calendar month.",
        "The Customer shall not, without prior written consent, solicit or hire any employee of the Supplier during the term and for twelve (12) months thereafter.",
        "Intellectual property in any deliverables created under a Statement of Work shall vest in the Supplier, and the Customer receives a perpetual licence upon full payment.",
        "Confidential Information excludes information that is or becomes public through no fault of the receiving party or that was independently developed without use of the disclosing party's information.",
    ],
    "es": [
        "El Proveedor indemnizará al Cliente por los daños derivados del incumplimiento del presente Contrato, sin que su responsabilidad total pueda exceder los importes abonados en los doce (12) meses anteriores a la reclamación.",
        "Cualquiera de las partes podrá resolver el Contrato con un preaviso escrito de noventa (90) días, sin que proceda la devolución de las cantidades pagadas por anticipado.",
        "El Cliente autoriza al Proveedor a tratar los Datos del Cliente únicamente para prestar los Servicios, quedando prohibido su uso para entrenar modelos de inteligencia artificial.",
        "Ninguna de las partes responderá por daños indirectos o lucro cesante, aun cuando hubiera sido advertida de su posibilidad.",
        "El Contrato se prorrogará automáticamente por períodos anuales salvo que una de las partes comunique su voluntad de no renovarlo con sesenta (60) días de antelación.",
        "El Proveedor podrá actualizar las tarifas una vez al año conforme al IPC más un tres por ciento (3%), notificándolo con treinta días de antelación.",
        "Las controversias se someterán a arbitraje vinculante en Madrid, renunciando las partes a cualquier otro fuero que pudiera corresponderles.",
        "El Proveedor notificará al Cliente cualquier violación de seguridad de los datos personales en un plazo máximo de setenta y dos (72) horas.",
        "Los créditos de servicio previstos en el Anexo 2 constituyen la única compensación por el incumplimiento del nivel de disponibilidad del 99,9 % mensual.",
        "La propiedad intelectual de los entregables corresponderá al Proveedor, otorgándose al Cliente una licencia perpetua una vez abonado el precio total.",
    ],
    "pt": [
        "O Fornecedor indenizará o Cliente por perdas decorrentes do descumprimento deste Contrato, limitada a sua responsabilidade total aos valores pagos nos doze (12) meses anteriores à reclamação.",
        "Qualquer das partes poderá rescindir este Contrato mediante aviso prévio por escrito de noventa (90) dias, não sendo reembolsáveis os valores pagos antecipadamente.",
        "O Cliente autoriza o Fornecedor a tratar os Dados do Cliente exclusivamente para a prestação dos Serviços, nos termos da LGPD, vedado o uso para treinamento de modelos de IA.",
        "Nenhuma das partes responderá por lucros cessantes ou danos indiretos, ainda que advertida da sua possibilidade.",
        "Este Contrato será renovado automaticamente por períodos de doze meses, salvo manifestação em contrário com sessenta (60) dias de antecedência.",
        "Os preços poderão ser reajustados anualmente pelo IPCA acrescido de três por cento (3%), mediante comunicação com trinta dias de antecedência.",
        "Fica eleito o foro da Comarca de São Paulo para dirimir quaisquer controvérsias, com renúncia a qualquer outro, por mais privilegiado que seja.",
        "O Fornecedor comunicará ao Cliente qualquer incidente de segurança envolvendo dados pessoais em até setenta e duas (72) horas.",
        "Os créditos de serviço previstos no Anexo 2 são a única compensação pelo descumprimento da disponibilidade mínima de 99,9% ao mês.",
        "A propriedade intelectual dos entregáveis pertencerá ao Fornecedor, sendo concedida ao Cliente licença perpétua após a quitação integral.",
    ],
}

CONTRACT_ASKS = {
    "en": [
        "Here is the contract draft we received:\n\n{doc}\n\nWhich of these clauses expose us to the most risk, and what should we push back on?",
        "{doc}\n\nCan you summarise our liability under this agreement and flag anything unusual compared to a standard SaaS contract?",
        "Our lawyer is out this week. Please review these clauses and tell me whether we can terminate early without paying the rest of the term:\n{doc}",
        "{doc}\n\nDoes the data clause allow them to train AI models on our customer data? Explain clause by clause.",
        "Please compare the indemnity and limitation of liability wording below with what we usually accept, and propose redlines:\n\n{doc}",
    ],
    "es": [
        "Te paso el borrador del contrato:\n\n{doc}\n\n¿Qué cláusulas nos exponen a más riesgo y qué deberíamos negociar?",
        "{doc}\n\n¿Puedes resumir nuestra responsabilidad según este contrato y señalar lo que no sea habitual?",
        "Nuestro abogado no está esta semana. Revisa estas cláusulas y dime si podemos rescindir antes sin pagar el resto del plazo:\n{doc}",
        "{doc}\n\n¿La cláusula de datos les permite entrenar modelos de IA con nuestros datos? Analízalo cláusula por cláusula.",
    ],
    "pt": [
        "Segue a minuta do contrato:\n\n{doc}\n\nQuais cláusulas trazem mais risco para nós e o que devemos negociar?",
        "{doc}\n\nVocê pode resumir nossa responsabilidade neste contrato e apontar o que foge do padrão?",
        "Nosso advogado está de férias. Revise estas cláusulas e diga se podemos rescindir antes sem pagar o restante:\n{doc}",
        "{doc}\n\nA cláusula de dados permite que eles treinem modelos de IA com nossos dados? Analise cláusula por cláusula.",
    ],
}
