"""`{{ user|person }}`: a person's name as orders.people.person_name gives it."""

from django import template

from orders.people import person_name

register = template.Library()
register.filter("person", person_name)
