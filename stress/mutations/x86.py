"""Mutations: x86: steal time and the TDP MMU."""
from mutation import Mutation

MUTATIONS = [
    Mutation(
        name='steal-time-nonatomic-clear', cls=0, kind='drop an atomic',
        file='Sources/X86/StealTime/StealTimeVM.swift',
        edits=[
            ('            let old = hostMM.pages.content.exchange(pfn, 0)',
             '            let old = hostMM.pages.content.load(pfn); engine.point("mutant"); hostMM.pages.content.store(pfn, 0)'),
        ],
        scenarios=['steal-time-flush']),
]
