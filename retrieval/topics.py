"""The guideline topic tags (spec/topics.md): every document carries exactly one."""

TOPICS: dict[str, str] = {
    "depression": "adult and adolescent depression: recognition, severity, stepped treatment, follow-up, referral",
    "anxiety": "generalized anxiety disorder and anxiety presentations in primary care",
    "panic": "panic disorder and panic attacks",
    "ptsd": "trauma exposure, PTSD screening and treatment",
    "bipolar": "recognising mania/hypomania, bipolar depression, mood stabilisers, lithium monitoring",
    "suicide-risk": "suicide risk screening and assessment, safety planning, means restriction, emergency pathways",
    "perinatal": "depression and anxiety in pregnancy and postpartum, postpartum psychosis, prescribing in "
                 "pregnancy/lactation",
    "alcohol": "unhealthy alcohol use, alcohol use disorder, withdrawal, pharmacotherapy",
    "opioids": "opioid use disorder, buprenorphine in primary care, naloxone",
    "insomnia": "chronic insomnia: CBT-I first, cautious hypnotic use",
    "adhd": "adult ADHD recognition and treatment in primary care",
    "eating-disorders": "anorexia, bulimia, binge eating: recognition, medical instability, referral",
    "psychosis": "first-episode psychosis, antipsychotic metabolic monitoring",
    "antidepressants": "choosing, starting, switching and stopping antidepressants; side effects; serotonin syndrome",
    "collaborative-care": "measurement-based care, stepped/collaborative care, when and how to refer",
    "older-adults": "late-life depression, distinguishing delirium and dementia, prescribing cautions in older adults",
    "general": "anything else (admin uploads without a tag)",
}

DEFAULT_TOPIC = "general"
